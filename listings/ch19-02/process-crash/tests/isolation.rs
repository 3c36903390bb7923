//! 子プロセスのパニックは親に伝わらず、親は終了コードとして受け取るだけであることを確かめます。

use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_process-crash");

/// 実行ファイルを動かすコマンド。パニックした子のバックトレースは調べないので作らせません
/// （`RUST_BACKTRACE=1`のとき、デバッグビルドではバックトレースを作るのに0.1秒ほどかかります）。
/// 親に渡した環境変数は、親が起動する子にも引き継がれます。
fn process_crash() -> Command {
    let mut command = Command::new(EXE);
    command.env("RUST_BACKTRACE", "0");
    command
}

#[test]
fn a_crashing_child_is_reported_and_the_parent_finishes_the_rest() {
    let output = process_crash().output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "入力3: 結果 9");
    // Rustのパニックはプロセスを終了コード101で終わらせます。
    assert_eq!(
        lines[1],
        "入力abc: 失敗（子プロセスが終了コード101で異常終了しました）"
    );
    assert_eq!(lines[2], "入力5: 結果 25");
    assert!(lines[3].ends_with("は最後まで動きました"), "{stdout}");
}

#[test]
fn the_worker_itself_really_panics_on_bad_input() {
    let output = process_crash().args(["worker", "abc"]).output().unwrap();
    assert_eq!(output.status.code(), Some(101));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("ワーカーが数値でない入力で落ちました")
    );
}

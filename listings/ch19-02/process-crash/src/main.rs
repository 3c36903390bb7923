//! 入力ごとに子プロセスを起動し、子プロセスが異常終了しても親プロセスは動き続けることを示します。
//!
//! 実行方法: `cargo run -p process-crash`
//! 2つ目の入力`abc`でワーカーはパニックして終了しますが、親はその終了コードを報告して
//! 残りの入力の処理を続けます（子のパニックのメッセージは標準エラーに出ます）。

use std::env;
use std::error::Error;
use std::path::Path;
use std::process::{self, Command, Stdio};

// ANCHOR: main
/// バグのあるワーカー: 数値でない入力を受け取るとパニックします。
fn worker(input: &str) {
    let n: u64 = input.parse().expect("ワーカーが数値でない入力で落ちました");
    println!("{}", n * n);
}

/// 1つの入力を子プロセスに計算させます。子がどう終わっても、親には`Result`が返るだけです。
fn square_in_child(exe: &Path, input: &str) -> Result<u64, String> {
    let output = Command::new(exe)
        .args(["worker", input])
        .stderr(Stdio::null()) // 子のパニックのメッセージは捨てて、終了状態だけを見ます
        .output()
        .map_err(|e| format!("起動できませんでした: {e}"))?;
    if !output.status.success() {
        return Err(match output.status.code() {
            Some(code) => format!("子プロセスが終了コード{code}で異常終了しました"),
            None => "子プロセスがシグナルで強制終了されました".to_string(),
        });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .trim()
        .parse()
        .map_err(|e| format!("子プロセスの出力が読めません: {e}"))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.as_slice() {
        [] => {} // 親プロセス: このまま下へ進みます
        [mode, input] if mode == "worker" => {
            worker(input);
            return Ok(());
        }
        _ => return Err(format!("使い方: process-crash [worker 入力]（{args:?}）").into()),
    }

    let exe = env::current_exe()?;
    for input in ["3", "abc", "5"] {
        match square_in_child(&exe, input) {
            Ok(square) => println!("入力{input}: 結果 {square}"),
            Err(e) => println!("入力{input}: 失敗（{e}）"),
        }
    }
    println!("親プロセス（PID: {}）は最後まで動きました", process::id());
    Ok(())
}
// ANCHOR_END: main

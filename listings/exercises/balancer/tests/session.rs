//! 本に載せる実行例（`demo.txt`、`python.txt`）を、本物の実行と比べます。
//! 結果の行の順序と、どのワーカーが実行したか、巻き添えで渡し直された回数は実行のたびに
//! 変わるので、その3つだけを比べません。
//! `cargo xtask bless balancer`で記録し直します。

use std::process::Command;

use book_support::{Varies, assert_matches_recording};

/// `balancer`を`args`で実行し、コマンド、標準出力、終了ステータスを端末で見えるとおりに並べます。
fn session(shown: &str, args: &[&str]) -> String {
    let run = Command::new(env!("CARGO_BIN_EXE_balancer"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.."))
        .output()
        .expect("cannot run balancer");
    let stdout = String::from_utf8(run.stdout).expect("the results are UTF-8");
    let code = run.status.code().expect("balancer exits by itself");
    format!("$ {shown}\n{stdout}$ echo $?\n{code}\n")
}

/// 実行のたびに変わってよいもの。
fn varies() -> Varies {
    Varies::nothing()
        .redact("[WORKER]", r#""worker":(?<redacted>\d+)"#)
        .redact("[REQUEUED]", r#""requeued":(?<redacted>\d+)"#)
        .any_line_order()
}

#[test]
fn the_demo_with_the_builtin_worker() {
    let text = session("cargo run -p balancer -- --demo", &["--demo"]);
    assert!(text.ends_with("$ echo $?\n3\n"), "three tasks fail\n{text}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/demo.txt");
    assert_matches_recording(path, &text, varies());
}

#[test]
fn the_demo_with_the_python_worker() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("python3が見つからないので、Pythonのワーカーの実行例を確かめません");
        return;
    }
    let worker = "listings/exercises/balancer/examples/worker.py";
    let text = session(
        &format!("cargo run -p balancer -- --demo -- python3 {worker}"),
        &["--demo", "--", "python3", worker],
    );
    assert!(text.ends_with("$ echo $?\n2\n"), "two tasks fail\n{text}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/python.txt");
    assert_matches_recording(path, &text, varies());
}

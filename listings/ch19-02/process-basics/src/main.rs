//! 自分自身の実行ファイルを3つの子プロセスとして起動し、それぞれにPIDを表示させます。
//!
//! 実行方法: `cargo run -p process-basics`
//! 親プロセスは`std::env::current_exe()`を`worker`引数付きで3回起動し、
//! すべての子プロセスの終わりを待って、終了状態を1つずつ確かめます。

use std::env;
use std::error::Error;
use std::process::{self, Child, Command};
use std::thread;
use std::time::Duration;

// ANCHOR: worker
/// 子プロセスとして起動されたときに実行する処理です。
fn worker(name: &str, delay: Duration) {
    let pid = process::id();
    println!("プロセス{name}（PID: {pid}）: 開始");
    thread::sleep(delay); // 時間のかかる処理の代わり
    println!("プロセス{name}（PID: {pid}）: 完了");
}
// ANCHOR_END: worker

// ANCHOR: main
fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.as_slice() {
        // 引数なし: 親プロセスとして子プロセスを起動します。
        [] => run_parent(),
        // `worker 名前 ミリ秒`: 親から起動された子プロセスです。
        [mode, name, millis] if mode == "worker" => {
            worker(name, Duration::from_millis(millis.parse()?));
            Ok(())
        }
        _ => Err(format!(
            "使い方: process-basics [worker 名前 ミリ秒]（受け取った引数: {args:?}）"
        )
        .into()),
    }
}

fn run_parent() -> Result<(), Box<dyn Error>> {
    println!("メインプロセス（PID: {}）", process::id());
    // いま動いているこのプログラム自身の実行ファイルです。
    let exe = env::current_exe()?;

    let mut children = Vec::new();
    for i in 0..3 {
        let name = format!("Worker-{i}");
        let millis = 100 * (i + 1);
        let child = Command::new(&exe)
            .args(["worker", &name, &millis.to_string()])
            .spawn()?; // 起動するだけで、終わりは待ちません
        println!("{name}をPID {}で起動しました", child.id());
        children.push((name, child));
    }

    wait_all(children)?;
    println!("全プロセス完了");
    Ok(())
}

/// すべての子プロセスの終わりを待ち、1つでも失敗していたらエラーを返します。
/// 途中で失敗が見つかっても、残りの子プロセスも必ず待ちます。
fn wait_all(children: Vec<(String, Child)>) -> Result<(), String> {
    let mut failures = Vec::new();
    for (name, mut child) in children {
        match child.wait() {
            Ok(status) if status.success() => {}
            Ok(status) => failures.push(format!("{name}（{status}）")),
            Err(e) => failures.push(format!("{name}（待てませんでした: {e}）")),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("失敗した子プロセス: {}", failures.join("、")))
    }
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn shell(script: &str) -> Child {
        Command::new("sh")
            .args(["-c", script])
            .spawn()
            .expect("shを起動できません")
    }

    #[cfg(unix)]
    #[test]
    fn wait_all_reports_every_failed_child_and_still_waits_for_the_rest() {
        let children = vec![
            ("ok".to_string(), shell("exit 0")),
            ("bad".to_string(), shell("exit 3")),
            ("slow".to_string(), shell("sleep 0.03; exit 0")),
        ];
        let err = wait_all(children).unwrap_err();
        assert_eq!(err, "失敗した子プロセス: bad（exit status: 3）");
    }

    #[cfg(unix)]
    #[test]
    fn wait_all_is_ok_when_every_child_succeeds() {
        let children = (0..3).map(|i| (format!("c{i}"), shell("exit 0"))).collect();
        assert_eq!(wait_all(children), Ok(()));
    }
}

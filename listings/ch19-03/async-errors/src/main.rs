//! 非同期コードのエラー処理: `?`、全部の結果を集める`join_all`、最初のエラーで
//! 残りを捨てる`try_join!`、パニックしたタスクの`JoinError`。
//!
//! 実行方法: `cargo run -p async-errors`

use std::error::Error;
use std::fmt;
use std::time::Duration;

use futures::future::join_all;
use tokio::time::{Instant, sleep};

#[derive(Debug, Clone, PartialEq)]
pub struct TaskError {
    name: String,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "タスク{}でエラーが起きました", self.name)
    }
}

impl Error for TaskError {}

// ANCHOR: tasks
async fn may_fail(name: &str, delay: Duration, should_fail: bool) -> Result<String, TaskError> {
    println!("タスク{name}: 開始");
    sleep(delay).await;
    if should_fail {
        println!("タスク{name}: 失敗");
        return Err(TaskError {
            name: name.to_string(),
        });
    }
    println!("タスク{name}: 完了");
    Ok(format!("成功: {name}"))
}

async fn two_steps() -> Result<String, TaskError> {
    let first = may_fail("1", Duration::from_millis(50), false).await?;
    // `?`は、エラーならここで関数を抜けて呼び出し側に`Err`を返します（`raise`に当たります）。
    let second = may_fail("2", Duration::from_millis(50), true).await?;
    Ok(format!("{first}、{second}"))
}

/// `gather(..., return_exceptions=True)`に当たります。全部を最後まで実行し、結果を順に返します。
async fn all_results(ms: Duration) -> Vec<Result<String, TaskError>> {
    join_all([
        may_fail("A", ms, false),
        may_fail("B", ms, true),
        may_fail("C", ms, false),
    ])
    .await
}

/// 最初の`Err`で返り、まだ終わっていない他の`Future`はその場でドロップされます。
async fn fail_fast(ms: Duration) -> Result<(String, String, String), TaskError> {
    tokio::try_join!(
        may_fail("D", ms * 3, false),
        may_fail("E", ms, true),
        may_fail("F", ms * 2, false),
    )
}
// ANCHOR_END: tasks

// ANCHOR: main
#[tokio::main]
async fn main() {
    let ms = Duration::from_millis(100);

    match two_steps().await {
        Ok(value) => println!("結果: {value}"),
        Err(e) => println!("エラーを受け取りました: {e}"),
    }

    println!("join_all（全部の結果を集める）:");
    for (i, result) in all_results(ms).await.iter().enumerate() {
        match result {
            Ok(value) => println!("結果{i}: {value}"),
            Err(e) => println!("結果{i}: エラー: {e}"),
        }
    }

    println!("try_join!（最初のエラーで終わる）:");
    let start = Instant::now();
    let result = fail_fast(ms).await;
    println!("結果: {result:?}、{:.1?}で返りました", start.elapsed());

    println!("パニックしたタスク:");
    let handle = tokio::spawn(async move {
        sleep(ms).await;
        panic!("想定外の状態です");
    });
    match handle.await {
        Ok(()) => println!("タスクは正常に終わりました"),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .unwrap_or("（文字列以外）");
            println!("タスクはパニックしました: {message}（mainは動き続けます）");
        }
        Err(e) => println!("タスクはキャンセルされました: {e}"),
    }
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use std::env;
    use std::process::Command;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    /// テストがわざと起こすパニックのメッセージ（の一部）
    const EXPECTED_PANICS: &[&str] = &["boom"];

    #[tokio::test(start_paused = true)]
    async fn question_mark_returns_the_first_error() {
        let start = Instant::now();
        assert_eq!(two_steps().await, Err(TaskError { name: "2".into() }));
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn join_all_runs_everything_and_keeps_each_result() {
        let start = Instant::now();
        let results = all_results(SEC).await;
        assert_eq!(start.elapsed(), SEC, "3つとも同時に1秒");
        assert_eq!(
            results,
            [
                Ok("成功: A".to_string()),
                Err(TaskError { name: "B".into() }),
                Ok("成功: C".to_string())
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn try_join_returns_at_the_first_error() {
        let start = Instant::now();
        assert_eq!(fail_fast(SEC).await, Err(TaskError { name: "E".into() }));
        assert_eq!(
            start.elapsed(),
            SEC,
            "Dの3秒を待たずに、Eが失敗した1秒で返る"
        );
    }

    /// 下の`try_join_drops_the_unfinished_futures`が子プロセスとして実行する補助テストです。
    /// リストの`fail_fast`そのものを呼び、返った後に一時停止した時計で10秒進めます。
    #[tokio::test(start_paused = true)]
    #[ignore = "try_join_drops_the_unfinished_futuresから子プロセスとして実行されます"]
    async fn fail_fast_then_wait_10_seconds() {
        assert_eq!(fail_fast(SEC).await, Err(TaskError { name: "E".into() }));
        sleep(10 * SEC).await;
        println!("10秒待ちました");
    }

    /// `try_join!`が返った後、DとFの`Future`は裏で動き続けたりしません（ドロップされています）。
    /// Pythonの`gather`は、1つが例外を投げても他のタスクを動かし続けます。
    /// `may_fail`が出力する行を見るために、補助テストをこのテストバイナリの子プロセスとして動かします。
    #[test]
    fn try_join_drops_the_unfinished_futures() {
        let output = Command::new(env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "tests::fail_fast_then_wait_10_seconds",
                "--nocapture",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{output:?}");
        assert!(stdout.contains("タスクE: 失敗"), "{stdout}");
        assert!(stdout.contains("10秒待ちました"), "{stdout}");
        for name in ["D", "F"] {
            assert!(stdout.contains(&format!("タスク{name}: 開始")), "{stdout}");
            assert!(
                !stdout.contains(&format!("タスク{name}: 完了")),
                "タスク{name}が、try_join!が返った後に完了しました:\n{stdout}"
            );
        }
    }

    #[tokio::test]
    async fn a_panicking_task_becomes_a_join_error() {
        book_support::silence_expected_panics(EXPECTED_PANICS);
        let handle = tokio::spawn(async { panic!("boom") });
        let error = handle.await.expect_err("パニックは`Err`になるはず");
        assert!(error.is_panic());
        assert_eq!(error.into_panic().downcast_ref::<&str>(), Some(&"boom"));
    }
}

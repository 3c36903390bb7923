//! `JoinHandle`をドロップしてもタスクは止まらないこと（切り離されること）と、止める方法を見ます。
//!
//! 実行方法: `cargo run -p detached-task`
//! ハンドルをドロップしただけのタスクは最後まで動いて報告を送り、
//! `abort`したタスクと`AbortOnDropHandle`をドロップしたタスクからは、報告が届きません。

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Duration, sleep};
use tokio_util::task::AbortOnDropHandle;

const TICK: Duration = Duration::from_millis(100);

// ANCHOR: counter
/// 100ミリ秒ごとに1つ数え、3回数えたら`report`で報告して終わるタスクを起動します。
fn spawn_counter(report: oneshot::Sender<u32>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut count = 0;
        for _ in 0..3 {
            sleep(TICK).await;
            count += 1;
        }
        // 受け取る側がもういなくても構わないので、結果は捨てます。
        let _ = report.send(count);
    })
}
// ANCHOR_END: counter

// ANCHOR: three_ways
/// ハンドルをすぐにドロップし、タスクからの報告を待ちます。
async fn drop_handle() -> Option<u32> {
    let (report, reported) = oneshot::channel();
    let handle = spawn_counter(report);
    drop(handle); // タスクは切り離されるだけで、動き続けます
    reported.await.ok()
}

/// 150ミリ秒後に`abort`でキャンセルし、タスクからの報告を待ちます。
async fn abort_task() -> Option<u32> {
    let (report, reported) = oneshot::channel();
    let handle = spawn_counter(report);
    sleep(TICK * 3 / 2).await;
    handle.abort();
    let error = handle
        .await
        .expect_err("キャンセルしたタスクは完了しません");
    assert!(error.is_cancelled());
    // キャンセルされたタスクは、持っていた`report`と一緒にドロップされています。
    reported.await.ok()
}

/// `AbortOnDropHandle`に包み、150ミリ秒後にドロップしてから、タスクからの報告を待ちます。
async fn abort_on_drop() -> Option<u32> {
    let (report, reported) = oneshot::channel();
    let task = AbortOnDropHandle::new(spawn_counter(report));
    sleep(TICK * 3 / 2).await;
    drop(task); // ここでタスクがキャンセルされます
    reported.await.ok()
}
// ANCHOR_END: three_ways

fn describe(report: Option<u32>) -> String {
    match report {
        Some(count) => format!("タスクは最後まで動き、{count}回数えたと報告しました"),
        None => "報告は届きませんでした（タスクは途中でキャンセルされました）".to_string(),
    }
}

#[tokio::main]
async fn main() {
    println!("ハンドルをドロップ: {}", describe(drop_handle().await));
    println!("abortでキャンセル: {}", describe(abort_task().await));
    println!(
        "AbortOnDropHandleをドロップ: {}",
        describe(abort_on_drop().await)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_task_whose_handle_was_dropped_runs_to_the_end() {
        let start = Instant::now();
        assert_eq!(drop_handle().await, Some(3));
        // 100ミリ秒を3回。ハンドルがなくても、タスクは最後まで動いています。
        assert_eq!(start.elapsed(), TICK * 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_aborted_task_never_reports() {
        let start = Instant::now();
        assert_eq!(abort_task().await, None);
        // タスクが終わるはずの300ミリ秒を待たず、キャンセルした150ミリ秒で分かります。
        assert_eq!(start.elapsed(), TICK * 3 / 2);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_an_abort_on_drop_handle_cancels_the_task() {
        let start = Instant::now();
        assert_eq!(abort_on_drop().await, None);
        assert_eq!(start.elapsed(), TICK * 3 / 2);
    }

    #[test]
    fn a_std_thread_whose_handle_was_dropped_keeps_running_too() {
        use std::sync::mpsc;
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            tx.send("まだ動いています").unwrap();
        });
        drop(handle); // 標準ライブラリのスレッドも、切り離されるだけです
        let message = rx.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(message, Ok("まだ動いています"));
    }
}

//! `spawn`したタスクの`JoinHandle`を`timeout`で待っても、時間切れでタスクは止まらないことと、止める方法を見ます。
//!
//! 実行方法: `cargo run -p detached-task`
//! 時間切れでハンドルがドロップされただけのタスクは最後まで動いて報告を送り、
//! 時間切れで`abort`したタスクと、`AbortOnDropHandle`に包んだタスクからは、報告が届きません。

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Duration, sleep, timeout};
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
/// 期限は150ミリ秒です。タスクは300ミリ秒かかるので、どれも時間切れになります。
const DEADLINE: Duration = Duration::from_millis(150);

/// 間違い: 時間切れになると`JoinHandle`がドロップされるだけで、タスクは動き続けます。
async fn timeout_only() -> Option<u32> {
    let (report, reported) = oneshot::channel();
    let result = timeout(DEADLINE, spawn_counter(report)).await;
    assert!(result.is_err(), "時間切れになるはずです");
    reported.await.ok()
}

/// 直し方1: ハンドルを`&mut`で貸して待ち、時間切れなら`abort`でキャンセルします。
async fn timeout_then_abort() -> Option<u32> {
    let (report, reported) = oneshot::channel();
    let mut handle = spawn_counter(report);
    if timeout(DEADLINE, &mut handle).await.is_err() {
        handle.abort();
        let error = handle
            .await
            .expect_err("キャンセルしたタスクは完了しません");
        assert!(error.is_cancelled());
    }
    // キャンセルされたタスクは、持っていた`report`と一緒にドロップされています。
    reported.await.ok()
}

/// 直し方2: `AbortOnDropHandle`に包めば、時間切れでドロップされたときにキャンセルされます。
async fn timeout_abort_on_drop() -> Option<u32> {
    let (report, reported) = oneshot::channel();
    let task = AbortOnDropHandle::new(spawn_counter(report));
    let result = timeout(DEADLINE, task).await;
    assert!(result.is_err(), "時間切れになるはずです");
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
    println!("timeoutだけ: {}", describe(timeout_only().await));
    println!(
        "timeoutの後にabort: {}",
        describe(timeout_then_abort().await)
    );
    println!(
        "AbortOnDropHandleをtimeoutで待つ: {}",
        describe(timeout_abort_on_drop().await)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_timed_out_task_keeps_running_to_the_end() {
        let start = Instant::now();
        assert_eq!(timeout_only().await, Some(3));
        // 150ミリ秒で時間切れになった後も動き続け、100ミリ秒を3回数え終えています。
        assert_eq!(start.elapsed(), TICK * 3);
    }

    #[tokio::test(start_paused = true)]
    async fn aborting_after_the_timeout_cancels_the_task() {
        let start = Instant::now();
        assert_eq!(timeout_then_abort().await, None);
        // タスクが終わるはずの300ミリ秒を待たず、時間切れの150ミリ秒で分かります。
        assert_eq!(start.elapsed(), DEADLINE);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abort_on_drop_handle_is_cancelled_by_the_timeout() {
        let start = Instant::now();
        assert_eq!(timeout_abort_on_drop().await, None);
        assert_eq!(start.elapsed(), DEADLINE);
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

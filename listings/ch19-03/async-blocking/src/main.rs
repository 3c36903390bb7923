//! 非同期コードの中でスレッドをブロックすると、同じスレッドの他のタスクが止まることと、
//! `spawn_blocking`でブロックする処理を別のスレッドに移せば止まらないことを示します。
//!
//! 実行方法: `cargo run -p async-blocking`
//! 20ミリ秒ごとに数を数える「ハートビート」タスクが、200ミリ秒のブロックの間に何回動けたかを表示します。

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use tokio::task;
use tokio::time;

// ANCHOR: blocking
/// `work`を実行している間に、20ミリ秒ごとのハートビートが何回動けたかを返します。
async fn heartbeats_during(work: impl Future<Output = ()>) -> usize {
    let beats = Arc::new(AtomicUsize::new(0));
    let heartbeat = tokio::spawn({
        let beats = Arc::clone(&beats);
        async move {
            let mut interval = time::interval(Duration::from_millis(20));
            loop {
                interval.tick().await;
                beats.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    work.await;
    heartbeat.abort();
    beats.load(Ordering::Relaxed)
}

fn heavy_work() {
    thread::sleep(Duration::from_millis(200)); // 重い計算やブロックするI/Oの代わり
}

// ワーカースレッドが1つだけのランタイム（asyncioのイベントループと同じ形）で比べます。
#[tokio::main(flavor = "current_thread")]
async fn main() {
    // まちがい: asyncな関数の中で、スレッドごと眠らせてしまいます。
    let beats = heartbeats_during(async { heavy_work() }).await;
    println!("async関数の中で直接ブロックした間のハートビート: {beats}回");

    // 正しい: ブロックする処理はブロック専用のスレッドに任せ、その終わりを`.await`します。
    let beats = heartbeats_during(async {
        task::spawn_blocking(heavy_work)
            .await
            .expect("heavy_workがパニックしました");
    })
    .await;
    println!("spawn_blockingに任せた間のハートビート: {beats}回");
}
// ANCHOR_END: blocking

#[cfg(test)]
mod tests {
    use super::*;

    /// `heavy_work`と同じく、スレッドごと眠る処理です。テストでは時間を短くします。
    fn short_heavy_work() {
        thread::sleep(Duration::from_millis(30));
    }

    // 1スレッドのランタイムでは、ブロックしている間ほかのタスクは1回もポーリングされません。
    #[tokio::test(flavor = "current_thread")]
    async fn blocking_inside_async_stalls_every_other_task() {
        assert_eq!(heartbeats_during(async { short_heavy_work() }).await, 0);
    }

    // `spawn_blocking`を待つ間はスレッドが空くので、ハートビートが動けます
    // （`interval`の最初の`tick`はすぐに終わるので、少なくとも1回は必ず数えられます）。
    #[tokio::test(flavor = "current_thread")]
    async fn spawn_blocking_keeps_the_runtime_free() {
        let beats = heartbeats_during(async {
            task::spawn_blocking(short_heavy_work)
                .await
                .expect("short_heavy_work");
        })
        .await;
        assert!(beats >= 1, "{beats}");
    }
}

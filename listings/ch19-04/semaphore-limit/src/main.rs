//! `tokio::sync::Semaphore`で、同時に動くタスクの数を3つまでに制限します。
//!
//! 実行方法: `cargo run -p semaphore-limit`
//! 100ミリ秒かかるタスク10個を3つずつ実行するので、4回の波（約400ミリ秒）で終わります。
//! 許可を得てからタスクを起動するので、起動済みで終わっていないタスクも最大3個です。

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;
use tokio::time::{Duration, Instant, sleep};

// ANCHOR: in_flight
/// 起動済みでまだ終わっていないタスクの数と、その最大値を数えます。
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    fn enter(&self) -> usize {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        now
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}
// ANCHOR_END: in_flight

// ANCHOR: limited
async fn limited_task(id: usize, running: usize, work: Duration) -> usize {
    println!("タスク{id}: 開始（実行中{running}個）");
    sleep(work).await; // 外部のAPIを呼ぶような、待ち時間の長い処理の代わり
    println!("タスク{id}: 完了");
    id
}

/// `tasks`個のタスクを、同時に`limit`個までで実行します。結果と同時実行数の最大を返します。
async fn run(tasks: usize, limit: usize, work: Duration) -> (Vec<usize>, usize) {
    let semaphore = Arc::new(Semaphore::new(limit));
    let in_flight = Arc::new(InFlight::default());

    let mut handles = Vec::with_capacity(tasks);
    for id in 0..tasks {
        // 起動する前に許可を得るので、許可が空くまでは次のタスクを起動しません。
        let permit = Arc::clone(&semaphore)
            .acquire_owned()
            .await
            .expect("セマフォを閉じてはいません");
        let running = in_flight.enter();
        let in_flight = Arc::clone(&in_flight);
        handles.push(tokio::spawn(async move {
            let result = limited_task(id, running, work).await;
            in_flight.leave();
            drop(permit); // タスクが終わってから許可を返します
            result
        }));
    }

    let mut results = Vec::with_capacity(tasks);
    for handle in handles {
        results.push(handle.await.expect("タスクがパニックしました"));
    }
    (results, in_flight.max.load(Ordering::SeqCst))
}

#[tokio::main]
async fn main() {
    let start = Instant::now();
    let (results, max) = run(10, 3, Duration::from_millis(100)).await;
    println!("結果: {results:?}");
    println!(
        "同時に実行されたタスクは最大{max}個、経過時間は{:.1?}",
        start.elapsed()
    );
}
// ANCHOR_END: limited

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ten_one_second_tasks_three_at_a_time_take_exactly_four_seconds() {
        let start = Instant::now();
        let (results, max) = run(10, 3, Duration::from_secs(1)).await;
        // 一時停止した時計の上では、時間は眠っているタスクの分だけ正確に進みます。
        // 3 + 3 + 3 + 1 の4つの波なので、ちょうど4秒です。
        assert_eq!(start.elapsed(), Duration::from_secs(4));
        assert_eq!(max, 3);
        assert_eq!(results, (0..10).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_real_limit_everything_runs_at_once() {
        let start = Instant::now();
        let (_, max) = run(10, 10, Duration::from_secs(1)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(max, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn the_runtime_never_holds_more_spawned_tasks_than_the_limit() {
        // ランタイム自身が数える「生きているタスク」の数を、0.5秒ごとに記録します。
        let sampler = tokio::spawn(async {
            let mut most = 0;
            for _ in 0..8 {
                sleep(Duration::from_millis(500)).await;
                let metrics = tokio::runtime::Handle::current().metrics();
                // 記録している、このタスク自身の分を引きます。
                most = most.max(metrics.num_alive_tasks() - 1);
            }
            most
        });
        run(10, 3, Duration::from_secs(1)).await;
        assert_eq!(sampler.await.unwrap(), 3);
    }
}

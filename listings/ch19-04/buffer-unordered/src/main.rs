//! ストリームの`buffer_unordered(3)`で、同時に動く処理を3つまでに制限します。
//!
//! 実行方法: `cargo run -p buffer-unordered`
//! 結果は終わった順に届きます。入力の順が欲しければ`buffered(3)`を使います（両方を実行します）。

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::stream::{self, StreamExt};
use tokio::time::{Duration, Instant, sleep};

/// いま実行中の処理の数と、その最大値を数えます。
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

// ANCHOR: fetch
async fn fetch(id: usize, work: Duration, in_flight: &InFlight) -> usize {
    in_flight.enter();
    sleep(work).await;
    in_flight.leave();
    id
}

/// 各処理を`work(id)`の時間で、同時に`limit`個まで実行します。結果は終わった順です。
async fn run_unordered(
    tasks: usize,
    limit: usize,
    work: impl Fn(usize) -> Duration,
) -> (Vec<usize>, usize) {
    let in_flight = InFlight::default();
    let results = stream::iter(0..tasks)
        .map(|id| fetch(id, work(id), &in_flight)) // まだ始まっていない`Future`のストリーム
        .buffer_unordered(limit) // 同時に`limit`個までポーリングし、終わった順に流す
        .collect()
        .await;
    (results, in_flight.max.load(Ordering::SeqCst))
}

/// `buffered`版: 同時に`limit`個までなのは同じですが、結果は入力の順に並びます。
async fn run_ordered(
    tasks: usize,
    limit: usize,
    work: impl Fn(usize) -> Duration,
) -> (Vec<usize>, usize) {
    let in_flight = InFlight::default();
    let results = stream::iter(0..tasks)
        .map(|id| fetch(id, work(id), &in_flight))
        .buffered(limit) // 終わっても、前の処理の結果が出るまで順番を待つ
        .collect()
        .await;
    (results, in_flight.max.load(Ordering::SeqCst))
}
// ANCHOR_END: fetch

// ANCHOR: main
#[tokio::main]
async fn main() {
    // 処理ごとに120、60、90ミリ秒…とかかる時間を変えます（終わる時刻は30ミリ秒以上離れます）。
    let work = |id: usize| Duration::from_millis([120, 60, 90][id % 3]);

    let start = Instant::now();
    let (results, max) = run_unordered(10, 3, work).await;
    println!("buffer_unordered: {results:?}");
    println!("  同時に最大{max}個、経過時間{:.1?}", start.elapsed());

    let start = Instant::now();
    let (results, max) = run_ordered(10, 3, work).await;
    println!("buffered: {results:?}");
    println!("  同時に最大{max}個、経過時間{:.1?}", start.elapsed());
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn at_most_three_at_once_and_four_waves() {
        let start = Instant::now();
        let (mut results, max) = run_unordered(10, 3, |_| Duration::from_secs(1)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(4));
        assert_eq!(max, 3);
        results.sort();
        assert_eq!(results, (0..10).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn unordered_yields_in_completion_order_buffered_in_input_order() {
        // 処理0は3秒、処理1は1秒、処理2は2秒かかります。
        let work = |id: usize| Duration::from_secs([3, 1, 2][id]);
        let (results, _) = run_unordered(3, 3, work).await;
        assert_eq!(results, [1, 2, 0]);

        let start = Instant::now();
        assert_eq!(run_ordered(3, 3, work).await, (vec![0, 1, 2], 3));
        // 並べ替えのために待つだけで、処理はやはり同時に進みます（合計の6秒ではなく3秒）。
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn buffered_keeps_order_but_a_slow_head_holds_the_window() {
        let work = |id: usize| Duration::from_millis([120, 60, 90][id % 3]);
        let start = Instant::now();
        let (results, max) = run_unordered(10, 3, work).await;
        // `main`が表示する順序（どの2つも30ミリ秒以上離れて終わるので、実際の時計でも同じ）
        assert_eq!(results, [1, 2, 0, 4, 3, 5, 7, 6, 8, 9]);
        assert_eq!((start.elapsed(), max), (Duration::from_millis(360), 3));

        let start = Instant::now();
        let (results, max) = run_ordered(10, 3, work).await;
        assert_eq!(results, (0..10).collect::<Vec<_>>());
        // 終わった処理も、前の処理の結果が出るまで枠を空けないので、そのぶん長くかかります。
        assert_eq!((start.elapsed(), max), (Duration::from_millis(480), 3));
    }
}

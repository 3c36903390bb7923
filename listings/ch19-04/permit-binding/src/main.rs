//! `let _ = sem.acquire().await`と`let _permit = sem.acquire().await`の違いを見ます。
//!
//! 実行方法: `cargo run -p permit-binding`
//! 100ミリ秒かかる呼び出し6つを、許可2つのセマフォで制限したつもりで実行します。
//! `let _ =`では許可がすぐに返されるので6つが同時に動き、`let _permit =`では2つずつ動きます。

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::join_all;
use tokio::sync::Semaphore;
use tokio::time::{Duration, Instant, sleep};

/// 同時に実行中の呼び出しの数と、その最大値を数えます。
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

/// 実行中の間だけ持つ値です。ドロップされると数を1つ減らします。
struct Running<'a>(&'a InFlight);

impl InFlight {
    fn enter(&self) -> Running<'_> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        Running(self)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

// ANCHOR: calls
async fn call_api_wrong(semaphore: &Semaphore, in_flight: &InFlight, work: Duration) {
    // `_`は変数ではないので、許可はこの文の終わりでドロップされ、すぐに返されます。
    let _ = semaphore
        .acquire()
        .await
        .expect("セマフォを閉じてはいません");
    let _running = in_flight.enter();
    sleep(work).await; // ここではもう許可を持っていません
}

async fn call_api(semaphore: &Semaphore, in_flight: &InFlight, work: Duration) {
    // `_permit`は変数なので、許可は関数の終わりまで生きています。
    let _permit = semaphore
        .acquire()
        .await
        .expect("セマフォを閉じてはいません");
    let _running = in_flight.enter();
    sleep(work).await; // 許可を持ったまま待ちます
}
// ANCHOR_END: calls

/// 6つの呼び出しを許可2つのセマフォのもとで同時に始め、同時実行数の最大を返します。
async fn run(bind_permit: bool, work: Duration) -> usize {
    let semaphore = Semaphore::new(2);
    let in_flight = InFlight::default();
    join_all((0..6).map(|_| async {
        if bind_permit {
            call_api(&semaphore, &in_flight, work).await;
        } else {
            call_api_wrong(&semaphore, &in_flight, work).await;
        }
    }))
    .await;
    in_flight.max.load(Ordering::SeqCst)
}

#[tokio::main]
async fn main() {
    for (label, bind_permit) in [("let _ =", false), ("let _permit =", true)] {
        let start = Instant::now();
        let max = run(bind_permit, Duration::from_millis(100)).await;
        println!(
            "{label}: 同時に実行された呼び出しは最大{max}個、経過時間は{:.1?}",
            start.elapsed()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn let_underscore_gives_the_permit_back_at_once() {
        let start = Instant::now();
        let max = run(false, Duration::from_secs(1)).await;
        // 制限は効かず、6つが同時に1秒待ちます。
        assert_eq!(max, 6);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_named_permit_limits_the_calls_to_two() {
        let start = Instant::now();
        let max = run(true, Duration::from_secs(1)).await;
        // 2つずつ3回に分かれるので、ちょうど3秒です。
        assert_eq!(max, 2);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }
}

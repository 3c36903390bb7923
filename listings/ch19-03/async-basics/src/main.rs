//! 2つの非同期関数を、順に`.await`する場合と`tokio::join!`で同時に待つ場合で比べます。
//!
//! 実行方法: `cargo run -p async-basics`
//! Aは200ミリ秒、Bは100ミリ秒かかる処理です。順に待つと合計の約300ミリ秒、
//! `join!`で同時に待つと長いほうの約200ミリ秒で終わります。

use std::time::Duration;

use tokio::time::{Instant, sleep};

// ANCHOR: task
async fn simple_task(name: &str, delay: Duration) -> String {
    println!("タスク{name}: 開始");
    sleep(delay).await; // 眠っている間、スレッドは別の`Future`を進められます
    println!("タスク{name}: 完了");
    format!("{name}の結果")
}
// ANCHOR_END: task

// ANCHOR: main
async fn sequential(delay_a: Duration, delay_b: Duration) -> Vec<String> {
    // 1つ目の`.await`が終わるまで、2つ目は始まりません。
    let a = simple_task("A", delay_a).await;
    let b = simple_task("B", delay_b).await;
    vec![a, b]
}

async fn concurrent(delay_x: Duration, delay_y: Duration) -> Vec<String> {
    // `join!`は2つの`Future`を交互に進め、両方が終わるのを待ちます。
    let (x, y) = tokio::join!(simple_task("X", delay_x), simple_task("Y", delay_y));
    vec![x, y]
}

#[tokio::main]
async fn main() {
    let (long, short) = (Duration::from_millis(200), Duration::from_millis(100));

    println!("順に実行:");
    let start = Instant::now();
    let results = sequential(long, short).await;
    let sequential_time = start.elapsed();
    println!("結果: {results:?}");

    println!("同時に実行（join!）:");
    let start = Instant::now();
    let results = concurrent(long, short).await;
    let concurrent_time = start.elapsed();
    println!("結果: {results:?}");

    println!("順に実行した時間: {sequential_time:.1?}");
    println!("同時に実行した時間: {concurrent_time:.1?}");
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;

    const A: Duration = Duration::from_secs(2);
    const B: Duration = Duration::from_secs(1);

    // 時計を止めたランタイムでは、眠っているタスクしかないと時計が次の期限まで進むので、
    // Pythonの例と同じ2秒と1秒でも一瞬で、しかも正確に測れます。
    #[tokio::test(start_paused = true)]
    async fn sequential_awaits_take_the_sum() {
        let start = Instant::now();
        let results = sequential(A, B).await;
        assert_eq!(start.elapsed(), A + B);
        assert_eq!(results, ["Aの結果", "Bの結果"]);
    }

    #[tokio::test(start_paused = true)]
    async fn join_takes_the_longest_and_keeps_the_order_of_its_arguments() {
        let start = Instant::now();
        let results = concurrent(A, B).await;
        assert_eq!(start.elapsed(), A);
        // Yが先に終わっても、結果は引数の順に並びます。
        assert_eq!(results, ["Xの結果", "Yの結果"]);
    }
}

//! データを5個ずつのバッチに分け、すべてのバッチを`join_all`で並行に処理します。
//!
//! 実行方法: `cargo run -p batch-join-all`
//! 4つのバッチが同時に進むので、全体は1つのバッチと同じ約100ミリ秒で終わり、
//! 結果は入力の順に並びます。

use futures::future::join_all;
use tokio::time::{Duration, Instant, sleep};

// ANCHOR: batch
/// まとめて送ると1回で済むAPI（一括登録など）の代わりです。
async fn process_batch(batch_id: usize, items: &[u32], work: Duration) -> Vec<u32> {
    println!("バッチ{batch_id}: 処理開始 {items:?}");
    sleep(work).await;
    items.iter().map(|item| item * 2).collect()
}

async fn run(data: &[u32], batch_size: usize, work: Duration) -> Vec<u32> {
    // `chunks`は元のデータを借用するスライスを返すので、コピーは起きません。
    let batches = data
        .chunks(batch_size)
        .enumerate()
        .map(|(batch_id, items)| process_batch(batch_id, items, work));
    // `join_all`はすべての`Future`を同時に進め、結果を入力の順に返します。
    let results: Vec<Vec<u32>> = join_all(batches).await;
    results.into_iter().flatten().collect()
}

#[tokio::main]
async fn main() {
    let data: Vec<u32> = (0..20).collect();
    let start = Instant::now();
    let results = run(&data, 5, Duration::from_millis(100)).await;
    println!("バッチ処理の結果: {results:?}");
    println!("経過時間: {:.1?}", start.elapsed());
}
// ANCHOR_END: batch

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn batches_run_together_and_results_keep_input_order() {
        let data: Vec<u32> = (0..20).collect();
        let start = Instant::now();
        let results = run(&data, 5, Duration::from_millis(500)).await;
        // 4つのバッチが同時に進むので、1バッチ分の500ミリ秒ちょうどです（合計の2秒ではありません）。
        assert_eq!(start.elapsed(), Duration::from_millis(500));
        assert_eq!(results, (0..20).map(|x| x * 2).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_last_batch_is_fine() {
        let data: Vec<u32> = (0..12).collect();
        let results = run(&data, 5, Duration::from_millis(500)).await; // 5 + 5 + 2
        assert_eq!(results, (0..12).map(|x| x * 2).collect::<Vec<_>>());
    }
}

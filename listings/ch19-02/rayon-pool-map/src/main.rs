//! 元のPythonの`Pool.map`をrayonで: 10個の数を4スレッドのプールで2乗し、結果を入力の順に受け取ります。
//!
//! 実行方法: `cargo run -p rayon-pool-map`
//! 1つの計算に100ミリ秒かかりますが、4つのスレッドで同時に進むので、全体は1秒より短く、
//! 理想的には3巡分の約300ミリ秒で終わります。

use std::error::Error;
use std::thread;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

// ANCHOR: map
/// 数値の2乗を計算します。`sleep`は時間のかかる計算の代わりです。
fn square(x: u64, work: Duration) -> u64 {
    // プールの中では、何番目のスレッドで動いているかが分かります。
    let worker = rayon::current_thread_index().unwrap_or_default();
    println!("スレッド{worker}: {x}の2乗を計算中");
    thread::sleep(work);
    x * x
}

/// `numbers`の各要素を`pool`の中で並列に2乗します。結果は入力と同じ順に並びます。
fn pool_map(pool: &ThreadPool, numbers: &[u64], work: Duration) -> Vec<u64> {
    pool.install(|| numbers.par_iter().map(|&x| square(x, work)).collect())
}

fn main() -> Result<(), Box<dyn Error>> {
    let pool = ThreadPoolBuilder::new().num_threads(4).build()?;
    let numbers: Vec<u64> = (1..=10).collect();

    println!("スレッドプールで並列処理:");
    let start = Instant::now();
    let results = pool_map(&pool, &numbers, Duration::from_millis(100));
    println!("結果: {results:?}");
    println!("実行時間: {:.1?}", start.elapsed());
    Ok(())
}
// ANCHOR_END: map

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_input_order_and_time_is_about_three_rounds() {
        let pool = ThreadPoolBuilder::new().num_threads(4).build().unwrap();
        let numbers: Vec<u64> = (1..=10).collect();
        let work = Duration::from_millis(30);

        // 10個を4スレッドで処理すると、どう分けても1つのスレッドが3つ以上を受け持つので、毎回3巡分
        // （90 ms）以上かかります。理想的な分け方は3つ・3つ・2つ・2つで、その4つの待ちが重なります。
        // 何回かのうち最も速い回は、1つずつ順に処理した10個分（300 ms）との中間（195 ms）より短く終わります。
        let rounds = [work * 3, work * 3, work * 2, work * 2];
        book_support::assert_waits_overlap("4スレッドのプール", &rounds, || {
            let results = pool_map(&pool, &numbers, work);
            assert_eq!(results, [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]);
        });
    }
}

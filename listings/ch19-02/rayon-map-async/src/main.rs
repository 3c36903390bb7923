//! 元のPythonの`map_async`をrayonとチャネルで: 計算をバックグラウンドで進め、
//! 結果が届くまでメインスレッドは別の仕事を続けます。
//!
//! 実行方法: `cargo run -p rayon-map-async`
//! 10個の数を4スレッドのプールで2乗します（1つ100ミリ秒）。メインスレッドは20ミリ秒ごとに
//! 結果が届いたかを確かめ、届いていなければ別の仕事を1つ片付けます。

use std::error::Error;
use std::sync::mpsc::{self, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use rayon::ThreadPool;
use rayon::prelude::*;

/// 数値の2乗を計算します。`sleep`は時間のかかる計算の代わりです。
fn square(x: u64, work: Duration) -> u64 {
    let worker = rayon::current_thread_index().unwrap_or_default();
    println!("スレッド{worker}: {x}の2乗を計算中");
    thread::sleep(work);
    x * x
}

// ANCHOR: map_async
/// バッチ全体をプールに投げてすぐ戻り、結果を受け取る受信側を返します（Pythonの`map_async`）。
fn map_async(pool: &ThreadPool, numbers: Vec<u64>, work: Duration) -> mpsc::Receiver<Vec<u64>> {
    let (tx, rx) = mpsc::channel();
    pool.spawn(move || {
        let results: Vec<u64> = numbers.par_iter().map(|&x| square(x, work)).collect();
        // 受信側がもういなければ、結果は捨てられるだけです。
        let _ = tx.send(results);
    });
    rx
}

/// 結果が届くまで、届いていないあいだは別の仕事を1つずつ片付けます。
/// 戻り値は結果と、その間に片付けた仕事の数です。
fn wait_while_working(rx: &mpsc::Receiver<Vec<u64>>) -> Result<(Vec<u64>, u32), Box<dyn Error>> {
    let mut other_work = 0;
    loop {
        match rx.try_recv() {
            Ok(results) => return Ok((results, other_work)),
            // まだ届いていない: 待たずに別の仕事をします
            Err(TryRecvError::Empty) => {
                thread::sleep(Duration::from_millis(20)); // 別の仕事の代わり
                other_work += 1;
            }
            // 送信側が結果を送らずに消えた: バッチの中でパニックが起きました
            Err(TryRecvError::Disconnected) => {
                return Err("バッチが結果を返さずに終わりました".into());
            }
        }
    }
}
// ANCHOR_END: map_async

// ANCHOR: main
fn main() -> Result<(), Box<dyn Error>> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build()?;
    let numbers: Vec<u64> = (1..=10).collect();

    println!("非同期実行:");
    let start = Instant::now();
    let rx = map_async(&pool, numbers, Duration::from_millis(100));
    println!("バッチを投げました。結果を待たずに先へ進みます");
    let (results, other_work) = wait_while_working(&rx)?;
    println!("待っている間に別の仕事を{other_work}個片付けました");
    println!("結果: {results:?}");
    println!("実行時間: {:.1?}", start.elapsed());
    Ok(())
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_keeps_working_and_gets_ordered_results_in_about_three_rounds() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        let work = Duration::from_millis(100);

        let start = Instant::now();
        let rx = map_async(&pool, (1..=10).collect(), work);
        // `map_async`はバッチの終わりを待たずに戻ります。
        assert!(
            start.elapsed() < work,
            "map_asyncが待ってしまいました: {:?}",
            start.elapsed()
        );
        let (results, other_work) = wait_while_working(&rx).unwrap();
        let elapsed = start.elapsed();

        assert_eq!(results, [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]);
        assert!(other_work >= 1, "結果を待つ間に何もしていません");
        assert!(elapsed >= work * 3, "{elapsed:?}");
        assert!(
            elapsed < Duration::from_millis(800),
            "並列に進んでいません: {elapsed:?}"
        );
    }

    #[test]
    fn a_panicking_batch_is_an_error_not_a_hang() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .panic_handler(|_| {}) // テストの出力を汚さないように、パニックは握りつぶします
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel::<Vec<u64>>();
        pool.spawn(move || {
            let _keep_sender_alive_until_panic = tx;
            panic!("バッチの中でパニック");
        });
        assert!(wait_while_working(&rx).is_err());
    }
}

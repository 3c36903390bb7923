//! 元のPythonの`map_async`をrayonとチャネルで: 計算をバックグラウンドで進め、
//! 結果が届くまでメインスレッドは別の処理を続けます。
//!
//! 実行方法: `cargo run -p rayon-map-async`
//! 10個の数を4スレッドのプールで2乗します（1つ100ミリ秒）。メインスレッドは20ミリ秒ごとに
//! 結果が届いたかを確かめ、届いていなければ別の処理を1つ片付けます。

use std::error::Error;
use std::panic::{self, AssertUnwindSafe};
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
fn map_async<F>(pool: &ThreadPool, numbers: Vec<u64>, f: F) -> mpsc::Receiver<Vec<u64>>
where
    F: Fn(u64) -> u64 + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::channel();
    pool.spawn(move || {
        // `spawn`したクロージャのパニックは、プールにパニックハンドラがなければ
        // プロセス全体を異常終了（abort）させます。ここで受け止めます。
        let batch = panic::catch_unwind(AssertUnwindSafe(|| {
            numbers.par_iter().map(|&x| f(x)).collect::<Vec<u64>>()
        }));
        if let Ok(results) = batch {
            // 受信側がもういなければ、結果は捨てられるだけです。
            let _ = tx.send(results);
        } // パニックしたときは何も送らずに`tx`をドロップし、受信側に知らせます
    });
    rx
}

/// 結果が届くまで、届いていないあいだは別の処理を1つずつ片付けます。
/// 戻り値は結果と、その間に片付けた処理の数です。
fn wait_while_working(rx: &mpsc::Receiver<Vec<u64>>) -> Result<(Vec<u64>, u32), Box<dyn Error>> {
    let mut other_work = 0;
    loop {
        match rx.try_recv() {
            Ok(results) => return Ok((results, other_work)),
            // まだ届いていない: 待たずに別の処理をします
            Err(TryRecvError::Empty) => {
                thread::sleep(Duration::from_millis(20)); // 別の処理の代わり
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
    let work = Duration::from_millis(100);

    println!("非同期実行:");
    let start = Instant::now();
    let rx = map_async(&pool, (1..=10).collect(), move |x| square(x, work));
    println!("バッチを投げました。結果を待たずに先へ進みます");
    let (results, other_work) = wait_while_working(&rx)?;
    println!("待っている間に別の処理を{other_work}個片付けました");
    println!("結果: {results:?}");
    println!("実行時間: {:.1?}", start.elapsed());

    // 途中でパニックするバッチ: プロセスは落ちず、エラーとして受け取れます。
    let rx = map_async(&pool, vec![1, 2, 0], |x| 100 / x);
    if let Err(e) = wait_while_working(&rx) {
        println!("パニックしたバッチ: {e}");
    }
    Ok(())
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;

    /// テストがわざと起こすパニックのメッセージ（の一部）
    const EXPECTED_PANICS: &[&str] = &["attempt to divide by zero"];

    fn pool(threads: usize) -> ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    #[test]
    fn the_caller_keeps_working_and_gets_ordered_results() {
        let pool = pool(4);
        let work = Duration::from_millis(30);

        // 10個を4スレッドで処理すると、どう分けても1つのスレッドが3つ以上を受け持つので、毎回3巡分
        // （90 ms）以上かかります。理想的な分け方は3つ・3つ・2つ・2つで、その4つの待ちが重なります。
        // 何回かのうち最も速い回は、1つずつ順に処理した10個分（300 ms）との中間（195 ms）より短く終わります。
        let rounds = [work * 3, work * 3, work * 2, work * 2];
        book_support::assert_waits_overlap("map_async", &rounds, || {
            let rx = map_async(&pool, (1..=10).collect(), move |x| square(x, work));
            // `map_async`はバッチの終わりを待たずに戻ります（戻った時点では、まだ結果がありません）。
            assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
            let (results, other_work) = wait_while_working(&rx).unwrap();
            assert_eq!(results, [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]);
            assert!(other_work >= 1, "結果を待つ間に何もしていません");
        });
    }

    /// パニックハンドラのないプールでも、パニックはプロセスを落とさずにエラーになります。
    #[test]
    fn a_panicking_batch_is_an_error_not_an_abort_or_a_hang() {
        book_support::silence_expected_panics(EXPECTED_PANICS);
        let pool = pool(2);
        let rx = map_async(&pool, vec![1, 2, 0, 4], |x| 100 / x);
        let error = wait_while_working(&rx).expect_err("0で割ったバッチは失敗するはず");
        assert_eq!(error.to_string(), "バッチが結果を返さずに終わりました");

        // プールもプロセスも生きていて、次のバッチを受け付けます。
        let rx = map_async(&pool, vec![1, 2, 4], |x| 100 / x);
        assert_eq!(wait_while_working(&rx).unwrap().0, [100, 50, 25]);
    }
}

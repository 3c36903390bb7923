//! 元のPythonの`compare_performance`をrayonで: 同じΣi²のタスクを逐次・rayon・スレッド数を決めたプールで実行します。
//!
//! 実行方法: `cargo run --release -p rayon-cpu`
//! 時間を測るのでリリースビルドで実行してください。デバッグビルド（`cargo test`も含む）では
//! すぐ終わるようにタスクを小さくしています。各方式を3回ずつ実行し、最も速かった回を表示します。

use std::error::Error;
use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use rayon::ThreadPoolBuilder;
use rayon::prelude::*;

// ANCHOR: task
/// CPU集約的なタスク: 0からn-1までのiについてi²を足し合わせます。
/// 合計は`u64`の上限を超えるので`u128`で持ちます。
fn cpu_intensive_task(n: u64) -> u128 {
    let mut total: u128 = 0;
    for i in 0..n {
        // `black_box`がないと、LLVMがループを公式に置き換えて計算そのものが消えてしまいます。
        let i = black_box(i);
        total += u128::from(i * i);
    }
    total
}
// ANCHOR_END: task

/// `f`を`runs`回実行して、結果と最も速かった回の時間を返します。
/// 同じマシンでほかのプログラムが動いていても、邪魔されなかった回の時間が残ります。
fn best_of<R>(runs: u32, mut f: impl FnMut() -> R) -> (R, Duration) {
    let mut best = Duration::MAX;
    let mut result = None;
    for _ in 0..runs {
        let start = Instant::now();
        let r = f();
        best = best.min(start.elapsed());
        result = Some(r);
    }
    (result.expect("runsは1以上"), best)
}

// ANCHOR: compare
fn main() -> Result<(), Box<dyn Error>> {
    // デバッグビルドは何十倍も遅いので、タスクを小さくしてすぐ終わるようにします。
    let n: u64 = if cfg!(debug_assertions) {
        100_000
    } else {
        50_000_000
    };
    let tasks = vec![n; 4]; // 元のPythonと同じく、同じ大きさのタスクを4つ
    let runs = 3;
    let cores = thread::available_parallelism()?.get();
    println!(
        "並列に動けるスレッド数: {cores}、タスク: n = {n} を{}個",
        tasks.len()
    );

    // 逐次実行: ふつうのイテレータ
    let (expected, sequential) = best_of(runs, || {
        tasks
            .iter()
            .map(|&n| cpu_intensive_task(n))
            .collect::<Vec<_>>()
    });
    println!("逐次実行: {sequential:.1?}");

    // rayon: `iter`を`par_iter`に変えるだけ。グローバルなスレッドプールで動きます
    let (results, elapsed) = best_of(runs, || {
        tasks
            .par_iter()
            .map(|&n| cpu_intensive_task(n))
            .collect::<Vec<_>>()
    });
    assert_eq!(results, expected);
    let ratio = sequential.as_secs_f64() / elapsed.as_secs_f64();
    println!("rayon（par_iter）: {elapsed:.1?}（{ratio:.2}倍）");

    // スレッド数を決めたプールの中で同じ`par_iter`を動かします
    for threads in [1, 2, 4] {
        let pool = ThreadPoolBuilder::new().num_threads(threads).build()?;
        let (results, elapsed) = best_of(runs, || {
            pool.install(|| {
                tasks
                    .par_iter()
                    .map(|&n| cpu_intensive_task(n))
                    .collect::<Vec<_>>()
            })
        });
        assert_eq!(results, expected);
        let ratio = sequential.as_secs_f64() / elapsed.as_secs_f64();
        println!("{threads}スレッドのプール: {elapsed:.1?}（{ratio:.2}倍）");
    }
    println!("どの方式でも結果は同じ: {}", expected[0]);
    Ok(())
}
// ANCHOR_END: compare

#[cfg(test)]
mod tests {
    use super::*;

    /// Σ_{i=0}^{n-1} i² = (n-1)n(2n-1)/6
    fn formula(n: u64) -> u128 {
        let n = u128::from(n);
        if n == 0 {
            0
        } else {
            (n - 1) * n * (2 * n - 1) / 6
        }
    }

    #[test]
    fn the_task_computes_the_sum_of_squares() {
        for n in [0, 1, 2, 10, 1_000, 123_457] {
            assert_eq!(cpu_intensive_task(n), formula(n), "n = {n}");
        }
    }

    #[test]
    fn parallel_results_equal_sequential_results_in_input_order() {
        let tasks: Vec<u64> = vec![50_000, 10, 70_000, 3];
        let sequential: Vec<u128> = tasks.iter().map(|&n| cpu_intensive_task(n)).collect();
        let parallel: Vec<u128> = tasks.par_iter().map(|&n| cpu_intensive_task(n)).collect();
        assert_eq!(parallel, sequential);
        for threads in [1, 2, 4] {
            let pool = ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            assert_eq!(pool.current_num_threads(), threads);
            let in_pool: Vec<u128> =
                pool.install(|| tasks.par_iter().map(|&n| cpu_intensive_task(n)).collect());
            assert_eq!(in_pool, sequential, "{threads}スレッド");
        }
    }
}

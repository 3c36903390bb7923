//! GILのないRustでは、CPUを使う処理もI/Oを待つ処理もスレッドで速くなることを測ります。
//!
//! 実行方法: `cargo run --release -p gil-free`
//! CPU集約的タスク（Σi²）を逐次・2スレッド・4スレッドで、I/O集約的タスク（sleep）を
//! 同じく3通りで実行し、かかった時間と逐次実行に対する倍率を表示します。
//! 時間を測るのでリリースビルドで実行してください。デバッグビルド（`cargo test`も含む）では
//! すぐ終わるようにnを小さくしています。

use std::hint::black_box;
use std::ops::Range;
use std::thread;
use std::time::{Duration, Instant};

// ANCHOR: tasks
/// CPU集約的タスク: `range`の各iについてi²を足し合わせます。
/// Σi²はすぐに`u64`の上限（約1.8×10^19）を超えるので、合計は`u128`で持ちます。
fn sum_of_squares(range: Range<u64>) -> u128 {
    let mut total: u128 = 0;
    for i in range {
        // `black_box`がないと、LLVMはこのループを公式n(n-1)(2n-1)/6に置き換えてしまい、
        // 何も計算しないプログラムの時間を測ることになります。
        let i = black_box(i);
        total += u128::from(i * i);
    }
    total
}

/// I/O集約的タスク: ネットワークやディスクを待つ代わりに眠ります。
fn io_task(delay: Duration) -> Duration {
    thread::sleep(delay);
    delay
}
// ANCHOR_END: tasks

// ANCHOR: split
/// 0..nを`threads`個の区間に分け、区間ごとにスレッドを起動して部分和を計算します。
fn parallel_sum_of_squares(n: u64, threads: u64) -> u128 {
    let chunk = n.div_ceil(threads);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let start = (t * chunk).min(n);
            let end = (start + chunk).min(n);
            thread::spawn(move || sum_of_squares(start..end))
        })
        .collect();
    // 部分和は`join`の戻り値として受け取り、メインスレッドで足します。
    handles
        .into_iter()
        .map(|h| h.join().expect("計算スレッドがパニックしました"))
        .sum()
}

/// I/Oタスクの並びを`threads`個に分け、スコープ付きスレッドで同時に待ちます。
fn parallel_io(delays: &[Duration], threads: usize) -> Vec<Duration> {
    let per_thread = delays.len().div_ceil(threads);
    thread::scope(|s| {
        let handles: Vec<_> = delays
            .chunks(per_thread)
            .map(|part| s.spawn(move || part.iter().map(|&d| io_task(d)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("I/Oスレッドがパニックしました"))
            .collect()
    })
}
// ANCHOR_END: split

// ANCHOR: main
/// `f`を`runs`回実行し、最も速かった回の時間を返します。
/// 同じマシンでほかのプログラムが動いていても、邪魔されなかった回の時間が残ります。
fn best_time<R: PartialEq + std::fmt::Debug>(runs: u32, mut f: impl FnMut() -> R) -> (R, Duration) {
    let start = Instant::now();
    let first = f();
    let mut best = start.elapsed();
    for _ in 1..runs {
        let start = Instant::now();
        let again = f();
        best = best.min(start.elapsed());
        assert_eq!(again, first, "同じ計算の結果が実行ごとに違います");
    }
    (first, best)
}

fn main() {
    // デバッグビルドでは最適化されず十倍以上遅いので、nを小さくしてすぐ終わるようにします。
    let n: u64 = if cfg!(debug_assertions) {
        200_000
    } else {
        250_000_000
    };
    let runs = 3;
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!("このマシンで並列に動けるスレッド数: {cores}");

    println!("=== CPU集約的タスク: Σi²（n = {n}、{runs}回のうち最速） ===");
    let (expected, sequential) = best_time(runs, || sum_of_squares(0..n));
    println!("逐次実行: {sequential:.1?}");
    for threads in [2, 4] {
        let (total, elapsed) = best_time(runs, || parallel_sum_of_squares(n, threads));
        assert_eq!(total, expected, "スレッドに分けると結果が変わりました");
        let ratio = sequential.as_secs_f64() / elapsed.as_secs_f64();
        println!("{threads}スレッド: {elapsed:.1?}（{ratio:.2}倍）");
    }
    println!("結果はすべて同じ: {expected}");

    let delays = [Duration::from_millis(100); 4];
    let count = delays.len();
    println!("=== I/O集約的タスク: 100ミリ秒のsleepを{count}回 ===");
    let start = Instant::now();
    for &d in &delays {
        io_task(d);
    }
    let sequential = start.elapsed();
    println!("逐次実行: {sequential:.1?}");
    for threads in [2, 4] {
        let start = Instant::now();
        let done = parallel_io(&delays, threads);
        let elapsed = start.elapsed();
        assert_eq!(done.len(), delays.len());
        let ratio = sequential.as_secs_f64() / elapsed.as_secs_f64();
        println!("{threads}スレッド: {elapsed:.1?}（{ratio:.2}倍）");
    }
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;

    /// Σ_{i<n} i² = (n-1)n(2n-1)/6
    fn formula(n: u64) -> u128 {
        let n = u128::from(n);
        if n == 0 {
            0
        } else {
            (n - 1) * n * (2 * n - 1) / 6
        }
    }

    #[test]
    fn the_sequential_sum_matches_the_formula() {
        for n in [0, 1, 2, 3, 10, 1_000, 100_000] {
            assert_eq!(sum_of_squares(0..n), formula(n), "n = {n}");
        }
    }

    #[test]
    fn splitting_among_threads_does_not_change_the_result() {
        // 割り切れる分け方・割り切れない分け方・スレッドのほうが多い分け方を試します。
        for n in [0, 1, 7, 1_000, 99_999, 200_000] {
            let sequential = sum_of_squares(0..n);
            for threads in [1, 2, 3, 4, 7, 16] {
                assert_eq!(
                    parallel_sum_of_squares(n, threads),
                    sequential,
                    "n = {n}, threads = {threads}"
                );
            }
        }
    }

    #[test]
    fn the_sum_exceeds_u64_for_large_n() {
        // 本文の主張: このnではu64に収まらないのでu128が要ります（公式で確かめるだけで、計算はしません）。
        assert!(formula(250_000_000) > u128::from(u64::MAX));
        // 1項ずつのi²（最大で約6.25×10^16）は、u64に収まります。
        assert!(249_999_999u64.checked_mul(249_999_999).is_some());
    }

    #[test]
    fn io_tasks_overlap_and_every_task_runs_once() {
        // どのタスクも1回ずつ、入力の順に結果が返ること（長さの違う待ちを目印にします）
        let short = [1, 2, 3, 4].map(Duration::from_micros);
        for threads in [1, 2, 3, 4, 8] {
            assert_eq!(parallel_io(&short, threads), short, "threads = {threads}");
        }
        // 4スレッドなら4つの待ちが重なり、1回分（30 ms）より長く、合計（120 ms）より
        // はっきり短く終わります。
        let delays = [Duration::from_millis(30); 4];
        book_support::assert_waits_overlap("parallel_io", &delays, || {
            parallel_io(&delays, 4);
        });
    }
}

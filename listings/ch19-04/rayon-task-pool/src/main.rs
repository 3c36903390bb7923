//! CPUを使い続けるタスクを、rayonのスレッドプールで並列に実行します。
//! 結果はタスクごとの`Result`で受け取るので、1つが失敗してもほかの結果は失われません。
//!
//! 実行方法: `cargo run --release -p rayon-task-pool`
//! 時間を測るので`--release`を付けます。速度比はコアの数と、ほかの負荷によって変わります（2コアなら2倍弱）。

use std::error::Error;
use std::fmt;
use std::hint::black_box;
use std::time::Instant;

use rayon::prelude::*;

// ANCHOR: task
#[derive(Debug, PartialEq)]
struct Overflow {
    n: u64,
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0から{}未満までの2乗の和はu64に収まりません", self.n)
    }
}

impl Error for Overflow {}

/// 0² + 1² + … + (n-1)²。桁あふれしたら`Err`を返します。
fn sum_of_squares(n: u64) -> Result<u64, Overflow> {
    let mut sum: u64 = 0;
    // `black_box`は、コンパイラがループを公式に置き換えて計算を省くのを防ぎます。
    for i in 0..black_box(n) {
        sum = i
            .checked_mul(i)
            .and_then(|square| sum.checked_add(square))
            .ok_or(Overflow { n })?;
    }
    Ok(sum)
}
// ANCHOR_END: task

// ANCHOR: main
fn main() -> Result<(), Box<dyn Error>> {
    // 最適化しないデバッグビルドは遅いので、`--release`なしでもすぐ終わるようにタスクを小さくします。
    let n = if cfg!(debug_assertions) {
        30_000
    } else {
        3_000_000
    };
    // 40件のタスクのうち、1件だけは大きすぎて途中で桁あふれします。
    let mut inputs = vec![n; 40];
    inputs[10] = 10_000_000;

    let start = Instant::now();
    let sequential: Vec<_> = inputs.iter().map(|&n| sum_of_squares(n)).collect();
    let sequential_time = start.elapsed();

    // ProcessPoolExecutor(max_workers=4)に当たるもの。
    // 指定しなければ、rayonはCPUのコア数と同じ数のスレッドを使います。
    let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build()?;
    let start = Instant::now();
    let parallel: Vec<Result<u64, Overflow>> =
        pool.install(|| inputs.par_iter().map(|&n| sum_of_squares(n)).collect());
    let parallel_time = start.elapsed();

    // `par_iter`から`collect`したベクタは、終わった順ではなく入力の順に並びます。
    for (index, result) in parallel.iter().enumerate() {
        if let Err(e) = result {
            println!("タスク{index}でエラー: {e}");
        }
    }
    let ok = parallel.iter().filter(|r| r.is_ok()).count();
    println!("成功: {ok}件（タスク0の結果: {:?}）", parallel[0]);
    println!(
        "逐次と並列の結果は入力の順に一致: {}",
        sequential == parallel
    );
    println!("逐次: {sequential_time:.1?}、rayon: {parallel_time:.1?}");
    println!(
        "速度比: {:.2}倍",
        sequential_time.as_secs_f64() / parallel_time.as_secs_f64()
    );
    Ok(())
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;

    /// 0² + 1² + … + (n-1)² = (n-1)n(2n-1)/6
    fn formula(n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            (n - 1) * n * (2 * n - 1) / 6
        }
    }

    #[test]
    fn small_sums_are_right() {
        assert_eq!(sum_of_squares(0), Ok(0));
        assert_eq!(sum_of_squares(4), Ok(14)); // 0 + 1 + 4 + 9
        assert_eq!(sum_of_squares(300_000), Ok(formula(300_000)));
    }

    #[test]
    fn too_big_a_task_fails_alone_and_is_the_error_of_the_whole_collect() {
        // 桁あふれするのは、nがどれだけ大きくても約380万項目を足したところです。デバッグビルドでは
        // それだけで0.1秒近くかかるので、大きすぎるタスクは1回だけ計算します。逐次の計算と比べる
        // 代わりに、公式から求めた値と比べます。
        let inputs = [1_000, 10_000_000, 2_000];
        let results: Vec<_> = inputs.par_iter().map(|&n| sum_of_squares(n)).collect();
        assert_eq!(
            results,
            [
                Ok(formula(1_000)),
                Err(Overflow { n: 10_000_000 }),
                Ok(formula(2_000))
            ]
        );

        // `Result<Vec<_>, _>`に集めると、どれか1つの`Err`が全体の結果になります。
        let all: Result<Vec<u64>, Overflow> = results.into_par_iter().collect();
        assert_eq!(all, Err(Overflow { n: 10_000_000 }));
    }
}

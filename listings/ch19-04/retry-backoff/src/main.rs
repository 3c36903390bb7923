//! 失敗した非同期処理を、指数バックオフ（＋ジッターと上限）で待ちながらやり直します。
//!
//! 実行方法: `cargo run -p retry-backoff`
//! 1つ目の例は2回失敗してから成功し、2つ目の例は何度やっても失敗して、最後のエラーを返します。

use std::fmt::Display;

use tokio::time::{Duration, Instant, sleep};

// ANCHOR: policy
struct Backoff {
    /// 1回目の失敗の後に待つ時間。失敗するたびに2倍にします。
    initial: Duration,
    /// 待つ時間の上限
    max_delay: Duration,
    /// 最初の試行も含めた、試行の回数の上限
    max_attempts: u32,
    /// 待つ時間にばらつき（ジッター）を加える関数。テストでは差し替えます。
    jitter: fn(Duration) -> Duration,
}

impl Backoff {
    /// `failures`回失敗した後に待つ時間（ジッターを加える前）: `initial`、その2倍、4倍…
    fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1);
        let exponential = self.initial.saturating_mul(2u32.saturating_pow(doublings));
        exponential.min(self.max_delay)
    }
}

/// 0から`delay`までの一様な乱数にします（「フルジッター」）。
/// 大勢のクライアントが同じ瞬間に再試行して、相手をまた倒してしまうのを防ぎます。
fn full_jitter(delay: Duration) -> Duration {
    delay.mul_f64(fastrand::f64())
}
// ANCHOR_END: policy

// ANCHOR: retry
async fn retry<T, E, F, Fut>(policy: &Backoff, mut operation: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let mut failures = 0;
    loop {
        match operation().await {
            Ok(value) => return Ok(value),
            Err(e) => {
                failures += 1;
                if failures >= policy.max_attempts {
                    return Err(e); // あきらめて、最後のエラーを呼び出し元に返します
                }
                let wait = (policy.jitter)(policy.delay(failures));
                println!("試行{failures}が失敗: {e}。{wait:.1?}待ってやり直します");
                sleep(wait).await;
            }
        }
    }
}
// ANCHOR_END: retry

// ANCHOR: main
/// 最初の2回は失敗し、3回目で成功する処理
async fn unreliable_operation(attempt: u32) -> Result<String, String> {
    if attempt < 2 {
        Err(format!("失敗{attempt}"))
    } else {
        Ok(format!("成功{attempt}"))
    }
}

#[tokio::main]
async fn main() {
    let policy = Backoff {
        initial: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        max_attempts: 3,
        jitter: full_jitter,
    };
    let mut attempt = 0;
    let start = Instant::now();
    // クロージャは呼ばれるたびに試行回数を1つ進めて、新しい`Future`を返します。
    let result = retry(&policy, || {
        let this_attempt = attempt;
        attempt += 1;
        unreliable_operation(this_attempt)
    })
    .await;
    println!("結果: {result:?}（{:.1?}）", start.elapsed());

    // 何度やっても失敗する処理: 待つ時間は10、20、40、40ミリ秒と上限で頭打ちになります。
    let policy = Backoff {
        initial: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        max_attempts: 5,
        jitter: |delay| delay, // ジッターなし
    };
    let result: Result<(), String> = retry(&policy, || async {
        Err("接続できません".to_string())
    })
    .await;
    if let Err(e) = result {
        println!("最終的に失敗: {e}");
    }
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn policy(max_attempts: u32, jitter: fn(Duration) -> Duration) -> Backoff {
        Backoff {
            initial: Duration::from_secs(1),
            max_delay: Duration::from_secs(3),
            max_attempts,
            jitter,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn two_failures_then_success_wait_exactly_one_plus_two_seconds() {
        let calls = Cell::new(0);
        let start = Instant::now();
        let result = retry(&policy(3, |d| d), || {
            let attempt = calls.get();
            calls.set(attempt + 1);
            unreliable_operation(attempt)
        })
        .await;
        assert_eq!(result, Ok("成功2".to_string()));
        assert_eq!(calls.get(), 3);
        assert_eq!(start.elapsed(), Duration::from_secs(1 + 2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_delay_is_capped_and_the_last_error_is_returned() {
        let calls = Cell::new(0);
        let start = Instant::now();
        let result: Result<(), String> = retry(&policy(5, |d| d), || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move { Err(format!("失敗{n}")) }
        })
        .await;
        assert_eq!(result, Err("失敗5".to_string()));
        assert_eq!(calls.get(), 5);
        // 1 + 2 + 3 + 3 秒: 4秒になるはずの4回目の待ちが、上限の3秒で止まります。
        assert_eq!(start.elapsed(), Duration::from_secs(1 + 2 + 3 + 3));
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_is_applied_to_every_wait() {
        let calls = Cell::new(0);
        let start = Instant::now();
        let _ = retry(&policy(3, |d| d / 2), || {
            let attempt = calls.get();
            calls.set(attempt + 1);
            unreliable_operation(attempt)
        })
        .await;
        assert_eq!(start.elapsed(), Duration::from_millis(500 + 1000));
    }

    #[tokio::test(start_paused = true)]
    async fn full_jitter_never_waits_longer_than_the_backoff() {
        fastrand::seed(19);
        let calls = Cell::new(0);
        let start = Instant::now();
        let result = retry(&policy(3, full_jitter), || {
            let attempt = calls.get();
            calls.set(attempt + 1);
            unreliable_operation(attempt)
        })
        .await;
        assert!(result.is_ok());
        assert!(
            start.elapsed() <= Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn delays_double_then_stop_at_the_cap_without_overflowing() {
        let p = policy(100, |d| d);
        let delays: Vec<u64> = (1..=5).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 3, 3, 3]);
        assert_eq!(p.delay(90), Duration::from_secs(3)); // 2の89乗でも桁あふれしません
    }
}

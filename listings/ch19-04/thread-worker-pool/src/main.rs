//! 決まった数のワーカースレッドに、チャネルでジョブを配るスレッドプールです。
//! 待ち時間の長い（I/Oのような）ジョブに向いています。
//!
//! 実行方法: `cargo run -p thread-worker-pool`
//! 100ミリ秒かかるジョブ4つを4つのワーカーで実行するので、全体も約100ミリ秒で終わります。
//! 1つのジョブは失敗しますが、ほかのジョブはその影響を受けずに完了します。

use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::unbounded;

// ANCHOR: pool
/// `jobs`を`workers`個のスレッドで実行し、終わった順に`(入力での位置, 結果)`を返します。
fn run_pool<J, T, E, F>(workers: usize, jobs: Vec<J>, task: F) -> Vec<(usize, Result<T, E>)>
where
    J: Send,
    T: Send,
    E: Send,
    F: Fn(J) -> Result<T, E> + Sync,
{
    let (job_tx, job_rx) = unbounded();
    let (result_tx, result_rx) = unbounded();
    for job in jobs.into_iter().enumerate() {
        job_tx.send(job).expect("受信側はまだ手元にあります");
    }
    drop(job_tx); // ジョブはこれで全部: ワーカーは空になったら終わります

    thread::scope(|s| {
        for _ in 0..workers {
            let (job_rx, result_tx, task) = (job_rx.clone(), result_tx.clone(), &task);
            s.spawn(move || {
                for (index, job) in job_rx {
                    // 失敗も`Err`という値として送り返すので、1つの失敗がワーカーを止めません。
                    if result_tx.send((index, task(job))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(result_tx);
        result_rx.iter().collect()
    })
}
// ANCHOR_END: pool

// ANCHOR: task
/// ネットワーク越しの取得の代わりです。`.invalid`のホストは失敗します。
fn fetch(host: &str, latency: Duration) -> Result<String, String> {
    thread::sleep(latency); // 応答を待っているあいだ、このスレッドは何もしません
    if host.ends_with(".invalid") {
        return Err(format!("{host}: 名前を解決できません"));
    }
    Ok(format!("{host}: 応答あり"))
}

fn main() {
    let hosts = [
        "alpha.example",
        "beta.example",
        "broken.invalid",
        "gamma.example",
    ];
    let latency = Duration::from_millis(100);

    let start = Instant::now();
    let mut results = run_pool(4, hosts.to_vec(), |host| fetch(host, latency));
    println!("4つのワーカーで{:.1?}かかりました", start.elapsed());

    println!("終わった順:");
    for (index, result) in &results {
        match result {
            Ok(body) => println!("  ジョブ{index}: {body}"),
            Err(e) => println!("  ジョブ{index}でエラー: {e}"),
        }
    }

    // 入力の順に並べ直すには、一緒に返した位置で並べ替えます。
    results.sort_by_key(|(index, _)| *index);
    let ok = results.iter().filter(|(_, r)| r.is_ok()).count();
    println!("入力の順: 成功{ok}件、失敗{}件", results.len() - ok);
    for (index, result) in &results {
        println!(
            "  ジョブ{index}: {}",
            if result.is_ok() { "成功" } else { "失敗" }
        );
    }
}
// ANCHOR_END: task

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: [&str; 4] = ["a.example", "b.example", "broken.invalid", "d.example"];

    #[test]
    fn one_failure_does_not_stop_the_others() {
        let mut results = run_pool(4, HOSTS.to_vec(), |h| fetch(h, Duration::ZERO));
        results.sort_by_key(|(i, _)| *i);
        let indices: Vec<usize> = results.iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, [0, 1, 2, 3]);
        assert_eq!(results[0].1, Ok("a.example: 応答あり".to_string()));
        assert_eq!(
            results[2].1,
            Err("broken.invalid: 名前を解決できません".to_string())
        );
        assert_eq!(results.iter().filter(|(_, r)| r.is_ok()).count(), 3);
    }

    #[test]
    fn four_waits_on_four_workers_overlap() {
        let latency = Duration::from_millis(30);
        // 4つの待ちが重なるので、1つ分（30 ms）以上かかり、順番に実行した合計（120 ms）よりはっきり短く終わります。
        book_support::assert_waits_overlap("4つのワーカー", &[latency; 4], || {
            let results = run_pool(4, HOSTS.to_vec(), |h| fetch(h, latency));
            assert_eq!(results.len(), 4);
        });
    }

    #[test]
    fn fewer_workers_than_jobs_take_several_rounds() {
        let latency = Duration::from_millis(30);
        let start = Instant::now();
        run_pool(2, HOSTS.to_vec(), |h| fetch(h, latency));
        // ワーカーが2つなら、4つのジョブには少なくとも2巡（2 × 30 ms）かかります。
        assert!(start.elapsed() >= 2 * latency);
    }
}

//! セマフォの代わりに、容量つきチャネルでリソースプールを作ります。
//!
//! 実行方法: `cargo run -p sync-pool`
//! 5つのワーカーが2つのリソースを取り合います。借りたリソースはガードがドロップされると
//! プールに戻るので、同時に使われるのは最大2つです。実行するたびに順序は変わります。

use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};

// ANCHOR: pool
/// 空いているリソースをチャネルの中にしまっておくプール
struct Pool<T> {
    sender: Sender<T>,
    receiver: Receiver<T>,
}

impl<T> Pool<T> {
    fn new(resources: Vec<T>) -> Self {
        let (sender, receiver) = bounded(resources.len());
        for resource in resources {
            sender
                .send(resource)
                .expect("容量はリソースの数と同じなので、必ず入る");
        }
        Pool { sender, receiver }
    }

    /// リソースを1つ借ります。全部使われていれば、どれかが返されるまで待ちます。
    fn acquire(&self) -> PoolGuard<'_, T> {
        let resource = self
            .receiver
            .recv()
            .expect("送信側はプール自身が持っているので、チャネルは閉じない");
        PoolGuard {
            resource: Some(resource),
            pool: self,
        }
    }
}

/// 借りているリソース。ドロップされるとプールに戻ります。
struct PoolGuard<'a, T> {
    resource: Option<T>, // ドロップの中で取り出すために`Option`にしておく
    pool: &'a Pool<T>,
}

impl<T> Deref for PoolGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.resource
            .as_ref()
            .expect("ドロップされるまでは必ず入っている")
    }
}

impl<T> Drop for PoolGuard<'_, T> {
    fn drop(&mut self) {
        if let Some(resource) = self.resource.take() {
            // チャネルに入るのは最大でリソースの数だけなので、ここで待たされることはない
            let _ = self.pool.sender.send(resource);
        }
    }
}
// ANCHOR_END: pool

/// 実行の記録: 同時に使われていたリソースの最大数と、各ワーカーが借りたリソース
struct Report {
    max_in_use: usize,
    served: Vec<(usize, u32)>,
}

// ANCHOR: workers
fn run(pool_size: u32, workers: usize, work: Duration) -> Report {
    let pool = Pool::new((0..pool_size).collect());
    let in_use = AtomicUsize::new(0);
    let max_in_use = AtomicUsize::new(0);

    let served = thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|id| {
                let (pool, in_use, max_in_use) = (&pool, &in_use, &max_in_use);
                s.spawn(move || {
                    let resource = pool.acquire(); // 空きがなければ、ここで待つ
                    let now = in_use.fetch_add(1, Ordering::SeqCst) + 1;
                    max_in_use.fetch_max(now, Ordering::SeqCst);
                    println!("Worker-{id}: リソース{}を取得（使用中{now}個）", *resource);

                    thread::sleep(work); // リソースを使う

                    in_use.fetch_sub(1, Ordering::SeqCst);
                    println!("Worker-{id}: リソース{}を返却", *resource);
                    *resource
                }) // クロージャの終わりで`resource`がドロップされ、プールに戻る
            })
            .collect();
        let served = handles.into_iter().map(|h| h.join().unwrap());
        served.enumerate().collect()
    });

    Report {
        max_in_use: max_in_use.into_inner(),
        served,
    }
}

fn main() {
    let report = run(2, 5, Duration::from_millis(100));
    println!("{}個のワーカーがリソースを借りました", report.served.len());
    println!(
        "同時に使われたリソースは最大{}個（プールは2個）",
        report.max_in_use
    );
}
// ANCHOR_END: workers

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn check(pool_size: u32, workers: usize) {
        // 各ワーカーは10ミリ秒リソースを使います。スレッドは一斉に起動するので、取り合いになります。
        let report = run(pool_size, workers, Duration::from_millis(10));
        assert!(
            (1..=pool_size as usize).contains(&report.max_in_use),
            "同時に{}個使われました（プールは{pool_size}個）",
            report.max_in_use
        );
        // どのワーカーも、プールにあるリソースのどれかを1回借りた
        let ids: BTreeSet<usize> = report.served.iter().map(|&(id, _)| id).collect();
        assert_eq!(ids, (0..workers).collect());
        assert!(report.served.iter().all(|&(_, r)| r < pool_size));
    }

    #[test]
    fn never_more_than_the_pool_size_in_use() {
        // 3通りのプールは互いに独立しているので、同時に動かします。
        thread::scope(|s| {
            s.spawn(|| check(2, 5));
            s.spawn(|| check(3, 5));
            s.spawn(|| check(1, 4));
        });
    }

    #[test]
    fn dropping_the_guard_returns_the_resource() {
        let pool = Pool::new(vec!["a"]);
        let guard = pool.acquire();
        assert_eq!(*guard, "a");
        assert!(pool.receiver.is_empty(), "借りている間はプールは空");
        drop(guard);
        assert_eq!(pool.receiver.len(), 1, "ドロップで戻る");
        assert_eq!(*pool.acquire(), "a");
    }
}

//! Rustの典型的なメモリリーク: `Arc`の循環参照。プールがワーカーを持ち、ワーカーもプールを
//! `Arc`で指すと、参照カウントが0にならず、どちらも解放されません。後ろ向きの参照を`Weak`にすれば直ります。
//!
//! 実行方法: `cargo run -p arc-cycle`

use std::sync::{Arc, Weak};

// ANCHOR: cyclic
mod cyclic {
    use std::sync::{Arc, Mutex};

    pub struct Pool {
        pub workers: Mutex<Vec<Arc<Worker>>>,
    }

    pub struct Worker {
        pub id: usize,
        pub pool: Arc<Pool>, // プールへの強い参照: これが輪を閉じます
    }

    impl Worker {
        pub fn pool_size(&self) -> usize {
            self.pool.workers.lock().unwrap().len()
        }
    }

    pub fn new_pool(workers: usize) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            workers: Mutex::new(Vec::new()),
        });
        for id in 0..workers {
            let worker = Arc::new(Worker {
                id,
                pool: Arc::clone(&pool),
            });
            pool.workers.lock().unwrap().push(worker);
        }
        pool
    }
}
// ANCHOR_END: cyclic

// ANCHOR: fixed
mod fixed {
    use std::sync::{Arc, Mutex, Weak};

    pub struct Pool {
        pub workers: Mutex<Vec<Arc<Worker>>>,
    }

    pub struct Worker {
        pub id: usize,
        pub pool: Weak<Pool>, // 後ろ向きの参照は`Weak`: プールの寿命を延ばしません
    }

    impl Worker {
        /// プールがまだあれば、その中のワーカーの数を返します。
        pub fn pool_size(&self) -> Option<usize> {
            let pool = self.pool.upgrade()?; // プールが解放済みなら`None`
            let size = pool.workers.lock().unwrap().len();
            Some(size)
        }
    }

    pub fn new_pool(workers: usize) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            workers: Mutex::new(Vec::new()),
        });
        for id in 0..workers {
            let worker = Arc::new(Worker {
                id,
                pool: Arc::downgrade(&pool),
            });
            pool.workers.lock().unwrap().push(worker);
        }
        pool
    }
}
// ANCHOR_END: fixed

// ANCHOR: drop
// `Drop`で、いつ解放されたかを表示します。
impl Drop for cyclic::Pool {
    fn drop(&mut self) {
        println!("  プール（循環あり）を解放しました");
    }
}

impl Drop for cyclic::Worker {
    fn drop(&mut self) {
        println!("  ワーカー{}（循環あり）を解放しました", self.id);
    }
}

impl Drop for fixed::Pool {
    fn drop(&mut self) {
        println!("  プール（Weak）を解放しました");
    }
}

impl Drop for fixed::Worker {
    fn drop(&mut self) {
        println!("  ワーカー{}（Weak）を解放しました", self.id);
    }
}
// ANCHOR_END: drop

// ANCHOR: main
fn main() {
    println!("== ワーカーがプールをArcで指す ==");
    let pool = cyclic::new_pool(2);
    let first = Arc::clone(&pool.workers.lock().unwrap()[0]);
    println!(
        "プールの強い参照: {}個、ワーカーから見たプールの大きさ: {}",
        Arc::strong_count(&pool),
        first.pool_size()
    );
    drop(first);
    let watcher: Weak<cyclic::Pool> = Arc::downgrade(&pool);
    drop(pool);
    println!(
        "手元の参照を捨てた後: 強い参照は{}個、まだ生きているか: {}",
        watcher.strong_count(),
        watcher.upgrade().is_some()
    );

    println!("== ワーカーがプールをWeakで指す ==");
    let pool = fixed::new_pool(2);
    let first = Arc::clone(&pool.workers.lock().unwrap()[0]);
    println!(
        "プールの強い参照: {}個、弱い参照: {}個、ワーカーから見たプールの大きさ: {:?}",
        Arc::strong_count(&pool),
        Arc::weak_count(&pool),
        first.pool_size()
    );
    drop(pool);
    println!(
        "手元の参照を捨てた後: ワーカーから見たプール: {:?}",
        first.pool_size()
    );
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cycle_is_never_freed() {
        let pool = cyclic::new_pool(3);
        // 手元の1つと、3つのワーカーがそれぞれ1つ
        assert_eq!(Arc::strong_count(&pool), 4);
        let watcher = Arc::downgrade(&pool);
        let worker_watcher = Arc::downgrade(&pool.workers.lock().unwrap()[0]);
        drop(pool);
        // 誰からも使えないのに、プールもワーカーも生きたまま（リーク）です。
        assert_eq!(watcher.strong_count(), 3);
        assert!(worker_watcher.upgrade().is_some());
        assert_eq!(worker_watcher.upgrade().map(|w| w.id), Some(0));
    }

    #[test]
    fn a_weak_back_edge_frees_everything() {
        let pool = fixed::new_pool(3);
        assert_eq!(Arc::strong_count(&pool), 1);
        assert_eq!(Arc::weak_count(&pool), 3);
        let watcher = Arc::downgrade(&pool);
        let worker_watcher = Arc::downgrade(&pool.workers.lock().unwrap()[0]);
        assert_eq!(
            worker_watcher.upgrade().and_then(|w| w.pool_size()),
            Some(3)
        );
        drop(pool);
        assert!(watcher.upgrade().is_none());
        assert!(worker_watcher.upgrade().is_none());
    }

    #[test]
    fn a_worker_outliving_its_pool_sees_none() {
        let pool = fixed::new_pool(1);
        let worker = Arc::clone(&pool.workers.lock().unwrap()[0]);
        drop(pool);
        assert_eq!(worker.pool_size(), None);
    }
}

//! 競合状態のあるカウンタと、それを直した2つのカウンタ（1回分の更新だけを関数にしたもの）。
//!
//! 実行方法: `cargo test -p loom-counter`
//! テスト（`tests/loom.rs`）が、このクレートを`--cfg loom`でビルドし直して`tests/model.rs`を実行します。
//! loomは、2つのスレッドがそれぞれ1回ずつ数えるときに起こりうる実行順序をすべて試し、
//! 最後に残る値を集めます。

// ANCHOR: shim
/// 同期の型は、ここからだけ使います。
/// `--cfg loom`を付けてビルドしたときは標準ライブラリの型の代わりにloomの型になり、
/// loomがスレッドの切り替えをすべて制御できるようになります。
pub mod sync {
    #[cfg(loom)]
    pub use loom::sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    };
    #[cfg(not(loom))]
    pub use std::sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    };
}
// ANCHOR_END: shim

use sync::{AtomicU64, Mutex, Ordering};

// ANCHOR: counters
/// `load`と`store`に分けた版の1回分: 読む操作と書く操作が別々（競合状態がある）。
pub fn increment_racy(counter: &AtomicU64) {
    let temp = counter.load(Ordering::Relaxed);
    counter.store(temp + 1, Ordering::Relaxed);
}

/// `fetch_add`版の1回分: 読んで、足して、書くまでが1つのアトミック操作。
pub fn increment_fetch_add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// `Mutex`版の1回分: 読んでから書くまでをロックで囲む。
pub fn increment_locked(counter: &Mutex<u64>) {
    let mut value = counter.lock().unwrap();
    *value += 1;
}
// ANCHOR_END: counters

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn each_increment_adds_one_on_a_single_thread() {
        let atomic = AtomicU64::new(0);
        increment_racy(&atomic);
        increment_fetch_add(&atomic);
        assert_eq!(atomic.into_inner(), 2);
        let locked = Mutex::new(0);
        increment_locked(&locked);
        assert_eq!(locked.into_inner().unwrap(), 1);
    }
}

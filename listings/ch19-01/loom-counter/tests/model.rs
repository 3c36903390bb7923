//! loomによるモデル検査。`--cfg loom`でビルドしたときだけコンパイルされます。
//!
//! 実行方法（`tests/loom.rs`が`cargo test`の中でこのとおりに実行します）:
//! `RUSTFLAGS="--cfg loom" cargo test -p loom-counter --test model -- --nocapture --test-threads=1`
#![cfg(loom)]

use std::collections::BTreeSet;

use loom::sync::Arc;
use loom::thread;
use loom_counter::sync::{AtomicU64, Mutex, Ordering};
use loom_counter::{increment_fetch_add, increment_locked, increment_racy};

// ANCHOR: explore
/// 2つのスレッドが`increment`を1回ずつ呼んだときの最終的な値を、
/// loomが試したすべての実行順序について集めます。
fn final_values<C: Send + Sync + 'static>(
    new: fn() -> C,
    increment: fn(&C),
    read: fn(&C) -> u64,
) -> BTreeSet<u64> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = std::sync::Arc::clone(&seen);
    // `loom::model`は、クロージャを実行順序の組み合わせの数だけ繰り返し実行します。
    loom::model(move || {
        let counter = Arc::new(new());
        let other = {
            let counter = Arc::clone(&counter);
            thread::spawn(move || increment(&counter))
        };
        increment(&counter);
        other.join().unwrap();
        record.lock().unwrap().push(read(&counter));
    });
    let runs = seen.lock().unwrap();
    let values: BTreeSet<u64> = runs.iter().copied().collect();
    println!("試した実行順序: {}通り、最終的な値: {values:?}", runs.len());
    values
}
// ANCHOR_END: explore

// ANCHOR: tests
#[test]
fn racy_counter_loses_an_update() {
    let values = final_values(
        || AtomicU64::new(0),
        increment_racy,
        |c| c.load(Ordering::SeqCst),
    );
    // 2回数えても1しか残らない実行順序を、loomは毎回必ず見つけます。
    assert_eq!(values, BTreeSet::from([1, 2]));
}

#[test]
fn fetch_add_never_loses_an_update() {
    let values = final_values(
        || AtomicU64::new(0),
        increment_fetch_add,
        |c| c.load(Ordering::SeqCst),
    );
    assert_eq!(values, BTreeSet::from([2]));
}

#[test]
fn mutex_never_loses_an_update() {
    let values = final_values(|| Mutex::new(0), increment_locked, |c| *c.lock().unwrap());
    assert_eq!(values, BTreeSet::from([2]));
}
// ANCHOR_END: tests

//! `thread::spawn`で起動したスレッドどうしで、`Arc<Mutex<T>>`を使って値を共有します。
//!
//! 実行方法: `cargo run -p arc-mutex-spawn`
//! 10個のスレッドが、共有のカウンタを100回ずつ1増やします。結果は毎回ちょうど1000です。

use std::sync::{Arc, Mutex};
use std::thread;

// ANCHOR: spawn
fn count_with_spawn(threads: u64, per_thread: u64) -> u64 {
    // `Arc`が所有者を数え、`Mutex`が中身を一度に1つのスレッドにしか触らせません。
    let counter = Arc::new(Mutex::new(0_u64));

    let mut handles = Vec::new();
    for _ in 0..threads {
        // スレッドごとに`Arc`を複製してからムーブします（中身は複製されません）。
        let counter = Arc::clone(&counter);
        handles.push(thread::spawn(move || {
            for _ in 0..per_thread {
                *counter.lock().unwrap() += 1;
            }
            // ここでこのスレッドの`Arc`がドロップされ、参照カウントが1減ります。
        }));
    }

    for handle in handles {
        handle.join().unwrap();
    }
    println!(
        "すべてのスレッドが終わった後の参照カウント: {}",
        Arc::strong_count(&counter)
    );
    *counter.lock().unwrap()
}
// ANCHOR_END: spawn

fn main() {
    let value = count_with_spawn(10, 100);
    println!("期待値1000、実際の値{value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_counter_is_exact() {
        for _ in 0..5 {
            assert_eq!(count_with_spawn(10, 100), 1000);
        }
        assert_eq!(count_with_spawn(4, 10_000), 40_000);
    }

    #[test]
    fn every_clone_is_dropped_when_the_threads_end() {
        // 本文の主張: スレッドが終わると、ムーブされた`Arc`はドロップされ、参照カウントは1に戻ります。
        let counter = Arc::new(Mutex::new(0_u64));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let counter = Arc::clone(&counter);
                thread::spawn(move || *counter.lock().unwrap() += 1)
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(Arc::strong_count(&counter), 1);
        let inner = Arc::into_inner(counter).expect("所有者は1つだけ");
        assert_eq!(inner.into_inner().unwrap(), 4);
    }
}

//! 競合状態を起こしていたカウンタを、`Mutex`と`fetch_add`の2通りで直します。
//!
//! 実行方法: `cargo run -p sync-mutex-counter`
//! どちらの方法でも、10個のスレッドが100回ずつ数えた結果は毎回ちょうど1000になります。

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

// ANCHOR: mutex
fn count_with_mutex(threads: u64, per_thread: u64) -> u64 {
    // 守りたいデータ（カウンタの値）を、ミューテックスの中にしまいます
    let counter = Mutex::new(0_u64);

    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per_thread {
                    let mut value = counter.lock().unwrap(); // ここでロックを獲得
                    let temp = *value;
                    thread::yield_now(); // 割り込む隙を作っても、ほかのスレッドはロックを待つだけ
                    *value = temp + 1;
                } // `value`（ガード）がここでドロップされ、ロックが解放される
            });
        }
    });

    counter.into_inner().unwrap()
}
// ANCHOR_END: mutex

// ANCHOR: atomic
fn count_with_fetch_add(threads: u64, per_thread: u64) -> u64 {
    let counter = AtomicU64::new(0);

    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per_thread {
                    // 読んで、足して、書くまでを1つの不可分な操作として行う
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });

    counter.into_inner()
}
// ANCHOR_END: atomic

fn main() {
    println!("Mutex版: 期待値1000、実際の値{}", count_with_mutex(10, 100));
    println!(
        "fetch_add版: 期待値1000、実際の値{}",
        count_with_fetch_add(10, 100)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mutex_counter_is_exact() {
        for _ in 0..5 {
            assert_eq!(count_with_mutex(10, 100), 1000);
        }
    }

    #[test]
    fn the_fetch_add_counter_is_exact() {
        for _ in 0..5 {
            assert_eq!(count_with_fetch_add(10, 100), 1000);
        }
        assert_eq!(count_with_fetch_add(8, 100_000), 800_000);
    }
}

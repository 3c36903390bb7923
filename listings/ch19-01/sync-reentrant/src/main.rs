//! 再帰ロック（Pythonの`RLock`）の代わり: 標準ライブラリの`Mutex`は再入できません。
//!
//! 実行方法: `cargo run -p sync-reentrant`
//! 1. ロックを持ったまま同じスレッドでもう一度ロックしようとすると、`try_lock`が`WouldBlock`を返す
//! 2. ロックは1回だけ獲得し、再帰するヘルパーには`&mut u64`を渡す（Rustらしい書き方）
//! 3. `parking_lot::ReentrantMutex`なら再入できるが、中身は`&T`でしか触れない（`Cell`を使う）

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard, TryLockError};

use parking_lot::ReentrantMutex;

// ANCHOR: naive
/// Pythonの`RecursiveCounter.increment`をそのまま移したもの。
/// `lock()`で再入すると、デッドロックするかパニックします（どちらになるかは決まっていません）。そこで`try_lock`で確かめます。
fn naive_increment(counter: &Mutex<u64>) -> Result<(), TryLockError<MutexGuard<'_, u64>>> {
    let mut value = counter.try_lock()?; // 獲得できなければ、待たずに`Err`で戻る
    *value += 1;
    if *value < 5 {
        naive_increment(counter)?; // ロックを持ったまま、自分をもう一度呼ぶ
    }
    Ok(())
}
// ANCHOR_END: naive

// ANCHOR: restructure
struct RecursiveCounter {
    value: Mutex<u64>,
}

impl RecursiveCounter {
    /// 公開するメソッドはロックを1回だけ獲得し、中身への`&mut`をヘルパーに渡します。
    fn increment(&self) {
        let mut value = self.value.lock().unwrap();
        increment_locked(&mut value);
    }

    fn get(&self) -> u64 {
        *self.value.lock().unwrap()
    }
}

/// ロックを知らない再帰関数。`&mut u64`を受け取るので、呼ぶ側がロック済みであることは型が保証します。
fn increment_locked(value: &mut u64) {
    *value += 1;
    if *value < 5 {
        increment_locked(value);
    }
}
// ANCHOR_END: restructure

// ANCHOR: parking_lot
struct ReentrantCounter {
    // ガードは`&Cell<u64>`しか渡さないので、書き換えは`Cell`を通して行う
    value: ReentrantMutex<Cell<u64>>,
}

impl ReentrantCounter {
    fn increment(&self) {
        let value = self.value.lock(); // 同じスレッドなら、ロック中でもまた獲得できる
        value.set(value.get() + 1);
        if value.get() < 5 {
            self.increment();
        }
    }

    fn get(&self) -> u64 {
        self.value.lock().get()
    }
}
// ANCHOR_END: parking_lot

// ANCHOR: main
fn main() {
    let counter = Mutex::new(0);
    match naive_increment(&counter) {
        Ok(()) => println!("そのまま移した版: 5まで数えました"),
        Err(TryLockError::WouldBlock) => {
            let value = counter.lock().unwrap();
            println!("そのまま移した版: 2回目のロックはWouldBlockでした（値は{value}）");
        }
        Err(TryLockError::Poisoned(_)) => println!("そのまま移した版: ロックが毒されていました"),
    }

    let counter = RecursiveCounter {
        value: Mutex::new(0),
    };
    counter.increment();
    println!("ロックを1回だけ獲得する版: {}", counter.get());

    let counter = ReentrantCounter {
        value: ReentrantMutex::new(Cell::new(0)),
    };
    counter.increment();
    println!("ReentrantMutex版: {}", counter.get());
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn locking_twice_on_one_thread_would_block() {
        let counter = Mutex::new(0);
        assert!(matches!(
            naive_increment(&counter),
            Err(TryLockError::WouldBlock)
        ));
        // 1回目の`+= 1`だけが行われ、ロックはきちんと解放されている
        assert_eq!(*counter.try_lock().unwrap(), 1);
    }

    #[test]
    fn locking_once_and_passing_mut_reaches_five() {
        let counter = RecursiveCounter {
            value: Mutex::new(0),
        };
        counter.increment();
        assert_eq!(counter.get(), 5);
        // 5以上なら1回だけ増える（Python版と同じ振る舞い）
        counter.increment();
        assert_eq!(counter.get(), 6);
    }

    #[test]
    fn the_reentrant_mutex_reaches_five() {
        let counter = ReentrantCounter {
            value: ReentrantMutex::new(Cell::new(0)),
        };
        counter.increment();
        assert_eq!(counter.get(), 5);
    }

    #[test]
    fn the_reentrant_mutex_still_excludes_other_threads() {
        let counter = Arc::new(ReentrantCounter {
            value: ReentrantMutex::new(Cell::new(0)),
        });
        let outer = counter.value.lock();
        let inner = counter.value.lock(); // 同じスレッドからは再入できる
        let other = Arc::clone(&counter);
        let other_got_it = thread::spawn(move || other.value.try_lock().is_some())
            .join()
            .unwrap();
        assert!(!other_got_it, "別のスレッドは獲得できないはず");
        drop(inner);
        drop(outer);

        // 複数のスレッドから使っても、数え落としはない
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        let v = counter.value.lock();
                        v.set(v.get() + 1);
                    }
                });
            }
        });
        assert_eq!(counter.get(), 4000);
    }
}

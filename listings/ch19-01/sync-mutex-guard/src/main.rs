//! ミューテックスのガード: ロックはガードが生きている間だけ保持され、ドロップで解放されます。
//!
//! 実行方法: `cargo run -p sync-mutex-guard`
//! `try_lock`は待たずに結果を返すので、ロックが今かかっているかどうかを安全に調べられます。

use std::sync::Mutex;

// ANCHOR: guard
fn is_locked<T>(mutex: &Mutex<T>) -> bool {
    // `try_lock`は待たずにすぐ結果を返します。獲得できたガードは、この式の終わりでドロップされます
    mutex.try_lock().is_err()
}

fn main() {
    let scores = Mutex::new(vec![80, 95]);

    {
        let mut guard = scores.lock().unwrap(); // `with lock:`の行に当たる
        guard.push(70); // ガードを通して、中の`Vec`を読み書きできる
        println!(
            "ブロックの中: {guard:?}、ロック中か: {}",
            is_locked(&scores)
        );
    } // ここで`guard`がドロップされ、ロックが解放される

    println!("ブロックの後: ロック中か: {}", is_locked(&scores));

    let mut guard = scores.lock().unwrap();
    guard.sort();
    drop(guard); // スコープの終わりを待たずに、明示的に解放することもできる
    println!("dropの後: ロック中か: {}", is_locked(&scores));

    // 最後は`Mutex`ごと消費して、中身を取り出す（もうロックは要らない）
    let scores = scores.into_inner().unwrap();
    println!("最終的な中身: {scores:?}");
}
// ANCHOR_END: guard

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::TryLockError;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn the_lock_is_held_exactly_while_the_guard_lives() {
        let m = Mutex::new(0);
        let guard = m.lock().unwrap();
        assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
        drop(guard);
        assert!(m.try_lock().is_ok());
        assert!(!is_locked(&m));
    }

    #[test]
    fn another_thread_waits_until_the_guard_is_dropped() {
        let m = Mutex::new(0);
        let m = &m;
        thread::scope(|s| {
            let mut guard = m.lock().unwrap();
            let (started_tx, started_rx) = mpsc::channel();
            let (tx, rx) = mpsc::channel();
            s.spawn(move || {
                started_tx.send(()).unwrap();
                let mut value = m.lock().unwrap(); // メインスレッドのガードがドロップされるまで待つ
                *value += 1;
                tx.send(*value).unwrap();
            });
            // もう1つのスレッドが`lock`を呼ぶ直前まで進んだのを見届けてから、待たされていることを確かめます。
            started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
            // ガードがある間は、もう1つのスレッドは進めません。
            assert!(rx.recv_timeout(Duration::from_millis(30)).is_err());
            *guard = 10;
            drop(guard);
            assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(11));
        });
    }
}

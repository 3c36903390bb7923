//! ロックを持ったままスレッドがパニックすると、ミューテックスは「毒された」状態になります。
//!
//! 実行方法: `cargo run -p sync-poison`
//! パニックしたスレッドのメッセージは標準エラー出力に出ます。標準出力には、毒されたことを確かめ、
//! `PoisonError::into_inner`で中身を取り出して直し、`clear_poison`で元に戻すまでが出ます。

use std::sync::{Arc, Mutex};
use std::thread;

// ANCHOR: poison
/// 2つの口座の残高。合計はいつも300のはず
type Accounts = Arc<Mutex<[i32; 2]>>;

/// 1つ目の口座から2つ目の口座へ送金しようとして、途中でパニックするスレッド
fn failing_transfer(accounts: &Accounts) -> thread::Result<()> {
    let accounts = Arc::clone(accounts);
    thread::spawn(move || {
        let mut balances = accounts.lock().unwrap();
        balances[0] -= 50; // 1つ目の口座から引いて…
        panic!("送金の途中で失敗しました"); // …2つ目に足す前にパニックする
    })
    .join()
}

fn main() {
    let accounts = Arc::new(Mutex::new([100, 200]));

    let result = failing_transfer(&accounts);
    println!("スレッドはパニックしたか: {}", result.is_err());
    println!("ミューテックスは毒されたか: {}", accounts.is_poisoned());

    let mut balances = match accounts.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            println!("lock()がErr(PoisonError)を返しました");
            poisoned.into_inner() // 毒されていても、ガードは取り出せる
        }
    };
    println!(
        "中身: {:?}（合計{}）",
        *balances,
        balances.iter().sum::<i32>()
    );

    balances[0] += 50; // 途中までの送金を取り消して、合計を300に戻す
    drop(balances);
    accounts.clear_poison(); // 直したので、毒された印を消す

    println!("clear_poisonの後: 毒されたか: {}", accounts.is_poisoned());
    println!("中身: {:?}", *accounts.lock().unwrap());
}
// ANCHOR_END: poison

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::PoisonError;

    /// テストがわざと起こすパニックのメッセージ（の一部）
    const EXPECTED_PANICS: &[&str] = &["送金の途中で失敗しました", "ロックを手放した後のパニック"];

    #[test]
    fn a_panic_while_locked_poisons_and_recovery_works() {
        book_support::silence_expected_panics(EXPECTED_PANICS);
        let accounts = Arc::new(Mutex::new([100, 200]));
        assert!(failing_transfer(&accounts).is_err());

        // 毒されたことが観測でき、`lock`は`Err`を返す
        assert!(accounts.is_poisoned());
        let poisoned = accounts
            .lock()
            .expect_err("毒されたロックは`Err`を返すはず");
        // `into_inner`で、パニックの時点の中身（不変条件が崩れたもの）を取り出せる
        let mut balances = poisoned.into_inner();
        assert_eq!(*balances, [50, 200]);
        balances[0] += 50;
        drop(balances);

        // `clear_poison`の後は、普通にロックできる
        accounts.clear_poison();
        assert!(!accounts.is_poisoned());
        assert_eq!(*accounts.lock().unwrap(), [100, 200]);
    }

    #[test]
    fn unwrap_or_else_into_inner_ignores_the_poison() {
        book_support::silence_expected_panics(EXPECTED_PANICS);
        let accounts = Arc::new(Mutex::new([100, 200]));
        assert!(failing_transfer(&accounts).is_err());
        let balances = accounts.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(*balances, [50, 200]);
        drop(balances);
        // 取り出しただけでは、毒された印は消えない
        assert!(accounts.is_poisoned());
    }

    #[test]
    fn a_panic_without_the_lock_does_not_poison() {
        book_support::silence_expected_panics(EXPECTED_PANICS);
        let accounts: Accounts = Arc::new(Mutex::new([100, 200]));
        let a = Arc::clone(&accounts);
        let result = thread::spawn(move || {
            *a.lock().unwrap() = [0, 300]; // ガードはこの文の終わりでドロップされる
            panic!("ロックを手放した後のパニック");
        })
        .join();
        assert!(result.is_err());
        assert!(!accounts.is_poisoned());
    }
}

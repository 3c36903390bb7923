//! デッドロックを防ぐ2つの方法: ロックを獲得する順序をそろえる方法と、
//! 一緒に変更するデータを1つの`Mutex`にまとめる方法です。
//!
//! 実行方法: `cargo run -p deadlock-fixes`
//! 2つのスレッドが逆向きの送金を1万回ずつ繰り返しても、どちらの方法でも最後まで終わります。

use std::sync::Mutex;
use std::thread;
use std::time::Instant;

// ANCHOR: ordered
struct Account {
    id: u32,
    balance: Mutex<i64>,
}

impl Account {
    fn new(id: u32, balance: i64) -> Self {
        Account {
            id,
            balance: Mutex::new(balance),
        }
    }
}

fn transfer_ordered(from: &Account, to: &Account, amount: i64) {
    // 同じ`Mutex`を2回ロックすると、それだけで止まってしまいます。
    assert_ne!(from.id, to.id, "同じ口座への送金です");
    // どのスレッドも、idの小さい口座から先にロックします。
    // 獲得の順序がいつも同じなので、互いに相手を待つ輪ができません。
    let (mut from_balance, mut to_balance);
    if from.id < to.id {
        from_balance = from.balance.lock().unwrap();
        to_balance = to.balance.lock().unwrap();
    } else {
        to_balance = to.balance.lock().unwrap();
        from_balance = from.balance.lock().unwrap();
    }
    *from_balance -= amount;
    *to_balance += amount;
}

/// 2つのスレッドが逆向きの送金を`rounds`回ずつ行います。
fn run_ordered(rounds: usize) -> (i64, i64) {
    let a = Account::new(1, 100);
    let b = Account::new(2, 100);
    thread::scope(|s| {
        s.spawn(|| (0..rounds).for_each(|_| transfer_ordered(&a, &b, 1))); // A→B
        s.spawn(|| (0..rounds).for_each(|_| transfer_ordered(&b, &a, 1))); // B→A
    });
    (*a.balance.lock().unwrap(), *b.balance.lock().unwrap())
}
// ANCHOR_END: ordered

// ANCHOR: one_mutex
/// 一緒に変更する残高を、まとめて1つの`Mutex`で守ります。
struct Bank {
    balances: Mutex<Vec<i64>>,
}

impl Bank {
    fn transfer(&self, from: usize, to: usize, amount: i64) {
        // ロックは1つだけなので、獲得の順序という問題そのものがありません。
        let mut balances = self.balances.lock().unwrap();
        balances[from] -= amount;
        balances[to] += amount;
    }
}
// ANCHOR_END: one_mutex

fn run_one_mutex(rounds: usize) -> Vec<i64> {
    let bank = Bank {
        balances: Mutex::new(vec![100, 100]),
    };
    thread::scope(|s| {
        s.spawn(|| (0..rounds).for_each(|_| bank.transfer(0, 1, 1)));
        s.spawn(|| (0..rounds).for_each(|_| bank.transfer(1, 0, 1)));
    });
    bank.balances.into_inner().unwrap()
}

fn main() {
    let rounds = 10_000;

    let start = Instant::now();
    let (a, b) = run_ordered(rounds);
    println!(
        "ロックの順序をそろえた場合: 2スレッド × {rounds}回の送金が{:.1?}で終わりました（A={a}、B={b}）",
        start.elapsed()
    );

    let start = Instant::now();
    let balances = run_one_mutex(rounds);
    println!(
        "1つのMutexにまとめた場合: 2スレッド × {rounds}回の送金が{:.1?}で終わりました（A={}、B={}）",
        start.elapsed(),
        balances[0],
        balances[1]
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// テストがわざと起こすパニックのメッセージ（の一部）
    const EXPECTED_PANICS: &[&str] = &["同じ口座への送金です"];

    /// `f`を別スレッドで実行し、制限時間内に終わらなければ失敗します（テストは止まりません）。
    fn finishes_within<T: Send + 'static>(
        limit: Duration,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || tx.send(f()));
        rx.recv_timeout(limit)
            .expect("制限時間内に終わりませんでした（デッドロック？）")
    }

    #[test]
    fn lock_ordering_finishes_and_keeps_the_total() {
        let balances = finishes_within(Duration::from_secs(10), || run_ordered(20_000));
        assert_eq!(balances, (100, 100));
    }

    #[test]
    fn one_mutex_finishes_and_keeps_the_total() {
        let balances = finishes_within(Duration::from_secs(10), || run_one_mutex(20_000));
        assert_eq!(balances, [100, 100]);
    }

    #[test]
    fn ordered_transfer_moves_money_in_both_directions() {
        let a = Account::new(1, 100);
        let b = Account::new(2, 100);
        transfer_ordered(&a, &b, 30);
        transfer_ordered(&b, &a, 5);
        assert_eq!(
            (*a.balance.lock().unwrap(), *b.balance.lock().unwrap()),
            (75, 125)
        );
    }

    #[test]
    #[should_panic(expected = "同じ口座への送金です")]
    fn transferring_to_the_same_account_is_refused_not_deadlocked() {
        book_support::silence_expected_panics(EXPECTED_PANICS);
        let a = Account::new(1, 100);
        transfer_ordered(&a, &a, 1);
    }
}

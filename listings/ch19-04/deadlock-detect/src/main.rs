//! 2つのスレッドが2つのミューテックスを逆の順序でロックして、本当にデッドロックします。
//! 2つ目のロックは時間制限付きで待つので、プログラムは止まらずにデッドロックを検出し、
//! ロックを解放してきれいに終わります。
//!
//! 実行方法: `cargo run -p deadlock-detect`

use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;

// ANCHOR: transfer
struct Account {
    name: &'static str,
    balance: Mutex<i64>,
}

impl Account {
    fn new(name: &'static str, balance: i64) -> Self {
        Account {
            name,
            balance: Mutex::new(balance),
        }
    }
}

/// 送金を試みたスレッドが、最後にどうなったか
#[derive(Debug, PartialEq)]
enum Outcome {
    Transferred,
    Stuck {
        holding: &'static str,
        waiting_for: &'static str,
    },
}

/// 2つのスレッドの足並みをそろえる待ち合わせ場所と、2つ目のロックを待つ時間の上限
struct Rendezvous {
    patience: Duration,
    both_hold_one: Barrier,
    both_decided: Barrier,
}

fn transfer(who: &str, from: &Account, to: &Account, amount: i64, r: &Rendezvous) -> Outcome {
    let mut from_balance = from.balance.lock();
    println!("{who}: 口座{}をロックしました", from.name);
    // 2つのスレッドがそれぞれ1つ目のロックを持つまで待ち合わせます（デッドロックを確実に起こすため）。
    r.both_hold_one.wait();

    println!("{who}: 口座{}のロックを待ちます", to.name);
    // `lock()`なら永遠に待つところを、`try_lock_for`で待つ時間に上限を付けます。
    let outcome = match to.balance.try_lock_for(r.patience) {
        Some(mut to_balance) => {
            *from_balance -= amount;
            *to_balance += amount;
            Outcome::Transferred
        }
        None => {
            let (holding, waiting_for) = (from.name, to.name);
            let waited = r.patience.as_millis();
            println!(
                "{who}: 口座{holding}を持ったまま、口座{waiting_for}を{waited}ミリ秒待っても獲得できません"
            );
            Outcome::Stuck {
                holding,
                waiting_for,
            }
        }
    };
    // 相手が結論を出すまでロックを持ち続けます。先に手放すと相手がそれを獲得できてしまい、
    // 「両方とも動けなかった」ことを確かめられないからです。
    r.both_decided.wait();
    outcome
    // ここで`from_balance`がドロップされ、1つ目のロックも解放されます。
}
// ANCHOR_END: transfer

// ANCHOR: run
fn run(a: &Account, b: &Account, patience: Duration) -> [Outcome; 2] {
    let r = Rendezvous {
        patience,
        both_hold_one: Barrier::new(2),
        both_decided: Barrier::new(2),
    };
    thread::scope(|s| {
        // スレッド1はA→B、スレッド2はB→Aの順にロックします。
        let t1 = s.spawn(|| transfer("スレッド1", a, b, 10, &r));
        let t2 = s.spawn(|| transfer("スレッド2", b, a, 20, &r));
        [t1, t2].map(|t| t.join().expect("スレッドがパニックしました"))
    })
}

fn main() {
    let a = Account::new("A", 100);
    let b = Account::new("B", 100);

    let outcomes = run(&a, &b, Duration::from_millis(200));
    if outcomes.iter().all(|o| matches!(o, Outcome::Stuck { .. })) {
        println!(
            "デッドロックを検出しました: 2つのスレッドが、互いに相手の持つロックを待っていました"
        );
    }
    // どちらのスレッドも終わり、ロックはすべて解放されています。送金は1件も行われていません。
    let (a, b) = (*a.balance.lock(), *b.balance.lock());
    println!("どちらのスレッドも終了しました（残高: A={a}、B={b}）");
}
// ANCHOR_END: run

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    #[test]
    fn the_deadlock_is_detected_within_a_bound_and_the_locks_are_released() {
        // 念のため別スレッドで動かし、結果が届かなければテストを失敗させます（止まりはしません）。
        let (done_tx, done_rx) = mpsc::channel();
        thread::spawn(move || {
            let a = Account::new("A", 100);
            let b = Account::new("B", 100);
            let start = Instant::now();
            let outcomes = run(&a, &b, Duration::from_millis(30));
            let elapsed = start.elapsed();
            // 終わった後は、どちらのロックもすぐに獲得できるはずです。
            let balances = (
                a.balance.try_lock().map(|g| *g),
                b.balance.try_lock().map(|g| *g),
            );
            done_tx.send((outcomes, elapsed, balances)).unwrap();
        });
        let (outcomes, elapsed, balances) = done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("デッドロックの検出が時間内に終わりませんでした");

        assert_eq!(
            outcomes,
            [
                Outcome::Stuck {
                    holding: "A",
                    waiting_for: "B"
                },
                Outcome::Stuck {
                    holding: "B",
                    waiting_for: "A"
                },
            ]
        );
        // 待つのは最大30ミリ秒なので、余裕を見ても数秒で終わります。
        assert!(elapsed >= Duration::from_millis(30), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert_eq!(balances, (Some(100), Some(100)));
    }

    #[test]
    fn without_the_other_thread_the_transfer_goes_through() {
        // 相手がいなければ（待ち合わせの相手が1人なら）、同じ関数で送金は成功します。
        let a = Account::new("A", 100);
        let b = Account::new("B", 100);
        let alone = Rendezvous {
            patience: Duration::from_millis(100),
            both_hold_one: Barrier::new(1),
            both_decided: Barrier::new(1),
        };
        let outcome = transfer("t", &a, &b, 30, &alone);
        assert_eq!(outcome, Outcome::Transferred);
        assert_eq!((*a.balance.lock(), *b.balance.lock()), (70, 130));
    }
}

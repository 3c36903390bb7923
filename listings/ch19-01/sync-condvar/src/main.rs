//! 条件変数（`Condvar`）でプロデューサーとコンシューマーをつなぎます。
//!
//! 実行方法: `cargo run -p sync-condvar`
//! プロデューサーが5個のアイテムを作り、3つのコンシューマーが取り合います。プロデューサーは作り終えるとキューを閉じるので、
//! コンシューマーは「もう来ない」と分かって終わります。実行するたびに順序は変わります。

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Duration;

// ANCHOR: queue
/// 複数のスレッドで共有するキュー。閉じられた後は、残りを出し切ったら`None`を返します。
struct Queue<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

impl<T> Queue<T> {
    fn new() -> Self {
        let state = State {
            items: VecDeque::new(),
            closed: false,
        };
        Queue {
            state: Mutex::new(state),
            changed: Condvar::new(),
        }
    }

    fn push(&self, item: T) {
        self.state.lock().unwrap().items.push_back(item);
        self.changed.notify_one(); // 待っているコンシューマーを1つ起こす
    }

    /// これ以上アイテムが来ないことを知らせます。
    fn close(&self) {
        self.state.lock().unwrap().closed = true;
        self.changed.notify_all(); // 待っているコンシューマーをすべて起こす
    }

    /// アイテムを1つ取り出します。空なら来るまで待ち、閉じていて空なら`None`を返します。
    fn pop(&self) -> Option<T> {
        let state = self.state.lock().unwrap();
        // 条件が成り立つ間は眠る。起きるたびに、ロックを獲得し直してから条件を確かめる
        let mut state = self
            .changed
            .wait_while(state, |s| s.items.is_empty() && !s.closed)
            .unwrap();
        state.items.pop_front()
    }
}
// ANCHOR_END: queue

#[cfg(test)]
impl<T> Queue<T> {
    /// `pop`の時間制限つき版。テストで「いつまでも待つ」ことを、止まらずに確かめるために使います。
    fn pop_timeout(&self, timeout: Duration) -> Option<T> {
        let state = self.state.lock().unwrap();
        let (mut state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |s| s.items.is_empty() && !s.closed)
            .unwrap();
        state.items.pop_front()
    }
}

// ANCHOR: main
/// プロデューサー1つとコンシューマー`consumers`個を動かし、コンシューマーごとに受け取ったアイテムを返します。
fn run(items: usize, consumers: usize, interval: Duration) -> Vec<Vec<String>> {
    let queue = Queue::new();

    thread::scope(|s| {
        let handles: Vec<_> = (0..consumers)
            .map(|i| {
                let queue = &queue;
                s.spawn(move || {
                    let mut consumed = Vec::new();
                    while let Some(item) = queue.pop() {
                        println!("Consumer-{i}: {item}を消費");
                        consumed.push(item);
                    }
                    println!(
                        "Consumer-{i}: キューが閉じたので終了（{}個）",
                        consumed.len()
                    );
                    consumed
                })
            })
            .collect();

        s.spawn(|| {
            for n in 0..items {
                thread::sleep(interval);
                println!("Producer: item-{n}を生産");
                queue.push(format!("item-{n}"));
            }
            queue.close(); // これを忘れると、コンシューマーは来ないアイテムを待ち続ける
        });

        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn main() {
    let consumed = run(5, 3, Duration::from_millis(50));
    let total: usize = consumed.iter().map(Vec::len).sum();
    println!("生産5個、消費{total}個");
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// `f`を別スレッドで実行し、時間制限付きで結果を待ちます（止まったままにならないように）。
    fn within<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || tx.send(f()).unwrap());
        rx.recv_timeout(Duration::from_secs(10))
            .expect("時間内に終わりませんでした")
    }

    #[test]
    fn every_item_is_consumed_exactly_once() {
        // 4通りを同時に動かし、それぞれの結果を時間制限付きで待ちます（全体は最も長い50個の分で終わります）。
        let cases = [(5, 3), (50, 3), (20, 1), (0, 3)];
        let runs = cases.map(|(items, consumers)| {
            let (tx, rx) = mpsc::channel();
            thread::spawn(move || tx.send(run(items, consumers, Duration::from_millis(1))));
            rx
        });
        for ((items, consumers), rx) in cases.into_iter().zip(runs) {
            let consumed = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("時間内に終わりませんでした");
            assert_eq!(consumed.len(), consumers);
            let mut all: Vec<String> = consumed.into_iter().flatten().collect();
            all.sort_by_key(|s| s["item-".len()..].parse::<usize>().unwrap());
            let expected: Vec<String> = (0..items).map(|n| format!("item-{n}")).collect();
            assert_eq!(all, expected, "重複も抜けもなく、ちょうど1回ずつ");
        }
    }

    #[test]
    fn the_seed_shape_waits_forever_for_a_sixth_item() {
        // Python版の形: 5個しか作らないのに、3つのコンシューマーが2個ずつ（合計6回）取りに行き、キューも閉じない。
        // 6回目の取り出しは永遠に待つので、時間制限つきの`pop_timeout`で、ちょうど1回失敗することを確かめます。
        // アイテムは最初から全部キューにあり、あれば待たずに取り出せるので、制限は短くても結果は同じです。
        let misses = within(|| {
            let queue = Queue::new();
            for n in 0..5 {
                queue.push(format!("item-{n}"));
            }
            thread::scope(|s| {
                let consumers: Vec<_> = (0..3)
                    .map(|_| {
                        let queue = &queue;
                        s.spawn(move || {
                            (0..2)
                                .filter(|_| queue.pop_timeout(Duration::from_millis(30)).is_none())
                                .count()
                        })
                    })
                    .collect();
                consumers
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .sum::<usize>()
            })
        });
        assert_eq!(misses, 1);
    }
}

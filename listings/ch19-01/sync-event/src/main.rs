//! Pythonの`threading.Event`を`Mutex<bool>`と`Condvar`で作り、3つのスレッドを一斉に起こします。
//! 後半は、チャネルの送信側をドロップして同じ「一斉の合図」を送る方法です。
//!
//! 実行方法: `cargo run -p sync-event`
//! 実行するたびに順序は変わります。

use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Duration;

// ANCHOR: event
/// 一度`set`されると、待っているスレッドがすべて起きる旗
struct Event {
    flag: Mutex<bool>,
    changed: Condvar,
}

impl Event {
    fn new() -> Self {
        Event {
            flag: Mutex::new(false),
            changed: Condvar::new(),
        }
    }

    fn set(&self) {
        *self.flag.lock().unwrap() = true;
        self.changed.notify_all(); // 待っているスレッドを全員起こす
    }

    fn wait(&self) {
        let flag = self.flag.lock().unwrap();
        // 旗が立つまで眠る。待つ間はロックを手放し、起きたらまた獲得して条件を確かめ直す
        let _flag = self.changed.wait_while(flag, |set| !*set).unwrap();
    }

    /// 旗が立てば`true`、`timeout`が過ぎてもまだなら`false`を返します（Pythonの`wait(timeout)`と同じ）。
    fn wait_timeout(&self, timeout: Duration) -> bool {
        let flag = self.flag.lock().unwrap();
        let (flag, _) = self
            .changed
            .wait_timeout_while(flag, timeout, |set| !*set)
            .unwrap();
        *flag
    }
}
// ANCHOR_END: event

// ANCHOR: main
fn main() {
    let event = Event::new();
    let early = event.wait_timeout(Duration::from_millis(20));
    println!("メイン: まだ誰もsetしていないので、時間切れ: {early}");

    thread::scope(|s| {
        for i in 0..3 {
            let event = &event;
            s.spawn(move || {
                println!("Waiter-{i}: イベントを待機中...");
                event.wait();
                println!("Waiter-{i}: イベントが発生しました！");
            });
        }
        s.spawn(|| {
            thread::sleep(Duration::from_millis(100));
            println!("Setter: イベントを設定");
            event.set();
        });
    });

    let late = event.wait_timeout(Duration::from_millis(20));
    println!("メイン: setの後は、すぐに戻る: {late}");

    channel_broadcast();
}
// ANCHOR_END: main

// ANCHOR: broadcast
fn channel_broadcast() {
    // 何も送らないチャネル。送信側がドロップされたことだけを合図に使う
    let (start, started) = crossbeam_channel::bounded::<()>(0);

    thread::scope(|s| {
        for i in 0..3 {
            let started = started.clone();
            s.spawn(move || {
                // 送信側がすべてドロップされると、`recv`は`Err`を返して待ちが終わる
                let _ = started.recv();
                println!("Receiver-{i}: 合図を受け取りました");
            });
        }
        thread::sleep(Duration::from_millis(100));
        println!("Sender: 送信側をドロップして合図");
        drop(start);
    });
}
// ANCHOR_END: broadcast

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, mpsc};
    use std::time::Instant;

    #[test]
    fn set_wakes_every_waiter() {
        let event = Arc::new(Event::new());
        let (waiting, waiters) = mpsc::channel();
        let (woke, woken) = mpsc::channel();
        for i in 0..3 {
            let (event, waiting, woke) = (Arc::clone(&event), waiting.clone(), woke.clone());
            thread::spawn(move || {
                waiting.send(()).unwrap();
                event.wait();
                woke.send(i).unwrap();
            });
        }
        // 3つとも`wait`を呼ぶ直前まで進んだのを見届けてから、`set`の前には誰も起きないことを確かめます
        for _ in 0..3 {
            waiters.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        assert!(woken.recv_timeout(Duration::from_millis(30)).is_err());
        event.set();
        let mut ids: Vec<i32> = (0..3)
            .map(|_| {
                woken
                    .recv_timeout(Duration::from_secs(5))
                    .expect("起きないスレッドがあります")
            })
            .collect();
        ids.sort();
        assert_eq!(ids, [0, 1, 2]);
    }

    #[test]
    fn wait_timeout_reports_whether_the_event_was_set() {
        let event = Event::new();
        let start = Instant::now();
        assert!(!event.wait_timeout(Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(30));

        event.set();
        let start = Instant::now();
        assert!(event.wait_timeout(Duration::from_secs(5)));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "setされていれば待たない"
        );
        event.wait(); // 旗は立ったまま。もう一度待っても、すぐに戻る
    }

    #[test]
    fn dropping_the_sender_wakes_every_receiver() {
        let (start, started) = crossbeam_channel::bounded::<()>(0);
        let (waiting, waiters) = mpsc::channel();
        let (woke, woken) = mpsc::channel();
        for _ in 0..3 {
            let (started, waiting, woke) = (started.clone(), waiting.clone(), woke.clone());
            thread::spawn(move || {
                waiting.send(()).unwrap();
                assert!(
                    started.recv().is_err(),
                    "何も送られず、閉じたことだけが伝わる"
                );
                woke.send(()).unwrap();
            });
        }
        // 3つとも`recv`を呼ぶ直前まで進んだのを見届けてから、合図の前には誰も起きないことを確かめます
        for _ in 0..3 {
            waiters.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        assert!(woken.recv_timeout(Duration::from_millis(30)).is_err());
        drop(start);
        for _ in 0..3 {
            woken
                .recv_timeout(Duration::from_secs(5))
                .expect("起きない受信側があります");
        }
    }
}

//! 同じプロデューサー・コンシューマーを、プロセスではなくスレッドとチャネルで書きます。
//!
//! 実行方法: `cargo run -p ipc-channel-queue`
//! プロデューサーのスレッドが送信側（`Sender`）を持ち、終わったらドロップします。
//! コンシューマーのスレッドの`for item in rx`は、送信側がすべてドロップされると終わります。

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

// ANCHOR: main
fn run(count: usize, produce_time: Duration, consume_time: Duration) -> Vec<String> {
    let (tx, rx) = mpsc::channel::<String>();

    let producer = thread::spawn(move || {
        for i in 0..count {
            let item = format!("Producer-item-{i}");
            println!("Producer 送信: {item}");
            // 文字列の所有権ごと送るので、コピーもシリアライズも要りません
            tx.send(item).expect("コンシューマーがいなくなりました");
            thread::sleep(produce_time);
        }
        // ここで`tx`がドロップされ、チャネルが閉じます（Pythonの`None`の代わり）
    });

    let consumer = thread::spawn(move || {
        let mut consumed = Vec::new();
        for item in rx {
            println!("Consumer 受信: {item}");
            thread::sleep(consume_time);
            consumed.push(item);
        }
        println!(
            "Consumer: チャネルが閉じられたので終了します（{}個）",
            consumed.len()
        );
        consumed
    });

    producer.join().expect("プロデューサーがパニックしました");
    consumer.join().expect("コンシューマーがパニックしました")
}

fn main() {
    run(5, Duration::from_millis(50), Duration::from_millis(30));
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_arrives_once_in_order() {
        let expected: Vec<String> = (0..5).map(|i| format!("Producer-item-{i}")).collect();
        // 本文の実行と同じく、作るほうが処理するほうより遅くなるようにします（時間は10分の1）。
        let (produce, consume) = (Duration::from_millis(5), Duration::from_millis(3));
        assert_eq!(run(5, produce, consume), expected);
        assert!(run(0, produce, consume).is_empty());
    }
}

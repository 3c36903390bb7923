//! 標準ライブラリの`mpsc`チャネルで、スレッドからスレッドへアイテムを送ります。
//!
//! 実行方法: `cargo run -p channel-mpsc`
//! 前半は1つのプロデューサーから`send`と`recv`で、後半は送信側を`clone`した3つの
//! プロデューサーから`for`ループで受け取ります。送信側がすべてドロップされると、
//! `for`ループは終わります。

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

// ANCHOR: one
/// 1つのプロデューサーが`items`個のアイテムを送り、メインスレッドが受け取ります。
fn one_producer(items: u32) -> Vec<String> {
    // `tx`が送信側（transmitter）、`rx`が受信側（receiver）です。
    let (tx, rx) = mpsc::channel();

    let producer = thread::spawn(move || {
        for i in 1..=items {
            let item = format!("アイテム{i}");
            println!("プロデューサー: {item}を送信");
            // 受信側がもうなければ`Err`になります（受け取る相手がいない）。
            tx.send(item).expect("受信側がドロップされました");
            thread::sleep(Duration::from_millis(10));
        }
        // ここで`tx`がドロップされ、チャネルが閉じます。
    });

    let mut received = Vec::new();
    // `recv`はアイテムが届くまで待ちます。送信側がすべてなくなり、
    // チャネルが空になると`Err(RecvError)`を返すので、ループが終わります。
    while let Ok(item) = rx.recv() {
        println!("メインスレッド: {item}を受信");
        received.push(item);
    }
    producer.join().unwrap();
    received
}
// ANCHOR_END: one

// ANCHOR: many
/// `producers`個のプロデューサーが`per_producer`個ずつ送り、メインスレッドが全部受け取ります。
fn many_producers(producers: u32, per_producer: u32) -> Vec<String> {
    let (tx, rx) = mpsc::channel();

    let mut handles = Vec::new();
    for p in 1..=producers {
        let tx = tx.clone(); // プロデューサーごとに送信側を複製する
        handles.push(thread::spawn(move || {
            for i in 1..=per_producer {
                tx.send(format!("P{p}のアイテム{i}")).unwrap();
                thread::sleep(Duration::from_millis(10));
            }
        }));
    }
    // 手元に残った最初の送信側を捨てます。これを忘れると、下の`for`は終わりません。
    drop(tx);

    let mut received = Vec::new();
    // 送信側がすべてドロップされ、届いたアイテムを読み終えると、ループが終わります。
    for item in rx {
        println!("受信: {item}");
        received.push(item);
    }
    for handle in handles {
        handle.join().unwrap();
    }
    received
}
// ANCHOR_END: many

fn main() {
    println!("=== 1つのプロデューサー ===");
    let received = one_producer(3);
    println!("受け取ったアイテム: {}個", received.len());

    println!("=== 3つのプロデューサー ===");
    let received = many_producers(3, 2);
    println!(
        "受け取ったアイテム: {}個（すべての送信側がドロップされたのでループを抜けました）",
        received.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::mpsc::{RecvTimeoutError, TryRecvError};

    #[test]
    fn one_producer_items_arrive_in_the_order_sent() {
        assert_eq!(one_producer(3), ["アイテム1", "アイテム2", "アイテム3"]);
        assert!(one_producer(0).is_empty());
    }

    #[test]
    fn every_item_of_every_producer_arrives_once_and_the_loop_ends() {
        let received = many_producers(3, 4);
        assert_eq!(received.len(), 12);
        let unique: BTreeSet<_> = received.iter().collect();
        assert_eq!(unique.len(), 12, "重複があります: {received:?}");
        // 1つのプロデューサーのアイテムどうしは、送った順に届きます。
        for p in 1..=3 {
            let own: Vec<_> = received
                .iter()
                .filter(|s| s.starts_with(&format!("P{p}の")))
                .cloned()
                .collect();
            let expected: Vec<_> = (1..=4).map(|i| format!("P{p}のアイテム{i}")).collect();
            assert_eq!(own, expected);
        }
    }

    #[test]
    fn the_receiver_waits_while_any_sender_is_alive() {
        // 本文の主張: 送信側が1つでも残っていれば、受信側は待ち続けます（`drop(tx)`を忘れた場合）。
        let (tx, rx) = mpsc::channel::<u32>();
        let forgotten = tx.clone();
        drop(tx);
        // 残った送信側は誰も使わないので、短く区切っても結果は同じです。
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(10)),
            Err(RecvTimeoutError::Timeout)
        );
        drop(forgotten);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn channel_never_makes_the_sender_wait_but_sync_channel_does() {
        // 本文の主張: `channel`には容量の上限がなく、誰も受け取っていなくても`send`はすぐ戻ります。
        let (tx, rx) = mpsc::channel();
        for i in 0..10_000 {
            tx.send(i).unwrap();
        }
        assert_eq!(rx.try_iter().count(), 10_000);

        // `sync_channel(2)`は2つでいっぱいになり、3つ目は受信側が取り出すまで入りません。
        let (tx, rx) = mpsc::sync_channel(2);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        assert_eq!(tx.try_send(3), Err(mpsc::TrySendError::Full(3)));
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(tx.try_send(3), Ok(()));
    }

    #[test]
    fn sending_fails_once_the_receiver_is_gone() {
        let (tx, rx) = mpsc::channel();
        drop(rx);
        let err = tx.send(42).unwrap_err();
        assert_eq!(err.0, 42, "送れなかったアイテムはエラーの中に戻ってきます");
    }

    #[test]
    fn the_receiver_can_move_to_another_thread_but_not_be_shared() {
        // `Receiver`は`Send`（別のスレッドへ移せる）だが`Sync`ではない。`Sender`は両方。
        fn is_send<T: Send>() {}
        is_send::<mpsc::Receiver<String>>();
        is_send::<mpsc::Sender<String>>();
        fn is_sync<T: Sync>() {}
        is_sync::<mpsc::Sender<String>>();
        // `Receiver`が`Sync`か`Clone`なら、下の`_`に当てはまる実装が2つになって
        // 型が決まらず、コンパイルエラーになります（実装がないことをコンパイル時に確かめる定番の技）。
        trait AmbiguousIfSync<A> {
            fn check() {}
        }
        impl<T> AmbiguousIfSync<()> for T {}
        impl<T: Sync> AmbiguousIfSync<u8> for T {}
        <mpsc::Receiver<String> as AmbiguousIfSync<_>>::check();
        trait AmbiguousIfClone<A> {
            fn check() {}
        }
        impl<T> AmbiguousIfClone<()> for T {}
        impl<T: Clone> AmbiguousIfClone<u8> for T {}
        <mpsc::Receiver<String> as AmbiguousIfClone<_>>::check();
        let (tx, rx) = mpsc::channel();
        let consumer = thread::spawn(move || rx.iter().sum::<u32>());
        for i in 1..=4 {
            tx.send(i).unwrap();
        }
        drop(tx);
        assert_eq!(consumer.join().unwrap(), 10);
    }
}

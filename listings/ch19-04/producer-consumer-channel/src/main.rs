//! 2つのプロデューサーと3つのコンシューマーが、容量10の`bounded`チャネルでつながります。
//!
//! 実行方法: `cargo run -p producer-consumer-channel`
//! 10個のアイテムがどれも1回だけ消費され、すべての送信側がドロップされると
//! コンシューマーは自分で終わります。終了フラグもタイムアウト付きのポーリングも使いません。

use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};

// ANCHOR: roles
fn produce(id: usize, items: usize, interval: Duration, tx: Sender<String>) {
    for n in 0..items {
        let item = format!("P{id}-item-{n}");
        println!("生産: {item}");
        // チャネルが満杯なら、空きができるまでここで待ちます。
        // `Err`になるのは受信側がすべてなくなったときだけです。
        if tx.send(item).is_err() {
            return;
        }
        thread::sleep(interval);
    }
    println!("プロデューサーP{id}: 完了");
    // ここで`tx`がドロップされます。これが「もう送らない」という合図です。
}

fn consume(id: usize, work: Duration, rx: Receiver<String>) -> Vec<String> {
    let mut consumed = Vec::new();
    // `iter()`は、チャネルが空で、しかも送信側がすべてドロップされたときに終わります。
    for item in rx.iter() {
        println!("消費(C{id}): {item}");
        thread::sleep(work); // 1個の処理にかかる時間
        consumed.push(item);
    }
    println!("コンシューマーC{id}: 完了（{}個）", consumed.len());
    consumed
}
// ANCHOR_END: roles

// ANCHOR: run
/// プロデューサーは`interval`ごとに1個作り、コンシューマーは1個の処理に`work`かかります。
fn run(
    producers: usize,
    consumers: usize,
    items: usize,
    interval: Duration,
    work: Duration,
) -> Vec<Vec<String>> {
    let (tx, rx) = bounded(10);

    thread::scope(|s| {
        for id in 0..producers {
            let tx = tx.clone();
            s.spawn(move || produce(id, items, interval, tx));
        }
        // 手元の送信側も手放します。これを忘れると、プロデューサーが全員終わっても
        // 送信側が1つ残るので、コンシューマーはいつまでも次のアイテムを待ち続けます。
        drop(tx);

        let handles: Vec<_> = (0..consumers)
            .map(|id| {
                let rx = rx.clone();
                s.spawn(move || consume(id, work, rx))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("コンシューマーがパニックしました"))
            .collect()
    })
}

fn main() {
    // プロデューサーは20ミリ秒ごとに1個作り、コンシューマーは1個の処理に40ミリ秒かかります。
    let (interval, work) = (Duration::from_millis(20), Duration::from_millis(40));
    let per_consumer = run(2, 3, 5, interval, work);
    let total: usize = per_consumer.iter().map(Vec::len).sum();
    println!("すべてのスレッドが終了しました: 消費したアイテムは合計{total}個");
}
// ANCHOR_END: run

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn every_item_is_consumed_exactly_once_and_the_run_ends() {
        // 万一コンシューマーが終わらなくてもテストが止まらないよう、別スレッドで動かして時間を区切ります。
        let (done_tx, done_rx) = mpsc::channel();
        // 本文の実行と同じく、コンシューマーの処理はプロデューサーの間隔の2倍かかります（時間は10分の1）。
        let (interval, work) = (Duration::from_millis(2), Duration::from_millis(4));
        thread::spawn(move || done_tx.send(run(2, 3, 5, interval, work)));
        let per_consumer = done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("コンシューマーが終わりませんでした");

        assert_eq!(per_consumer.len(), 3);
        let mut all: Vec<String> = per_consumer.into_iter().flatten().collect();
        all.sort();
        let mut expected: Vec<String> = (0..2)
            .flat_map(|p| (0..5).map(move |n| format!("P{p}-item-{n}")))
            .collect();
        expected.sort();
        // 同じアイテムを2回消費していれば長さが、取りこぼしていれば中身が違います。
        assert_eq!(all, expected);
    }
}

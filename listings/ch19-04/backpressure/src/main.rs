//! 背圧（バックプレッシャー）: 容量の小さい`bounded`チャネルに速いプロデューサーと遅いコンシューマーをつなぐと、
//! チャネルが満杯のあいだ`send`が待たされ、プロデューサーはコンシューマーの速さに合わせて進みます。
//!
//! 実行方法: `cargo run -p backpressure`
//! 最初の2個（容量の分）はすぐ送れますが、その後の`send`はどれも約50ミリ秒ずつ待たされます。

use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;

struct Report {
    /// `send`ごとに待たされた時間
    waits: Vec<Duration>,
    /// プロデューサーが全部を送り終えるまでの時間
    total: Duration,
    /// コンシューマーが受け取った順のアイテム
    received: Vec<u32>,
}

// ANCHOR: run
fn run(capacity: usize, items: u32, consume_time: Duration) -> Report {
    let (tx, rx) = bounded(capacity);

    // 遅いコンシューマー: 1個受け取るたびに`consume_time`かかります。
    let consumer = thread::spawn(move || {
        let mut received = Vec::new();
        loop {
            thread::sleep(consume_time); // 次のアイテムを受け取る準備に時間がかかる
            match rx.recv() {
                Ok(item) => received.push(item),
                Err(_) => break, // 送信側がドロップされ、チャネルも空になった
            }
        }
        received
    });

    // 速いプロデューサー: 待たされなければ一瞬で全部を送れます。
    let start = Instant::now();
    let mut waits = Vec::new();
    for item in 0..items {
        let before = Instant::now();
        tx.send(item).expect("コンシューマーが先に終わりました");
        let waited = before.elapsed();
        println!("送信{item}: {waited:.1?}待ちました");
        waits.push(waited);
    }
    let total = start.elapsed();
    drop(tx); // もう送らないことをコンシューマーに知らせます

    let received = consumer.join().expect("コンシューマーがパニックしました");
    Report {
        waits,
        total,
        received,
    }
}
// ANCHOR_END: run

fn main() {
    let (capacity, items, consume_time) = (2, 6, Duration::from_millis(50));
    let report = run(capacity, items, consume_time);
    let waited: Duration = report.waits.iter().sum();
    println!(
        "容量{capacity}のチャネルに{items}個を送るのに{:.1?}かかり、そのうち{waited:.1?}は空きを待っていました",
        report.total
    );
    println!("受信した順序: {:?}", report.received);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::SendTimeoutError;

    #[test]
    fn a_full_channel_blocks_the_sender() {
        let (tx, rx) = bounded(2);
        tx.send(0).unwrap();
        tx.send(1).unwrap();
        // 誰も受信しないので、3個目は時間切れまで待たされて戻ってきます（誰も受信しないので、
        // 制限が短くても結果は同じです）。
        let third = tx.send_timeout(2, Duration::from_millis(10));
        assert_eq!(third, Err(SendTimeoutError::Timeout(2)));
        // 1個受信すれば空きができて、すぐ送れます。
        assert_eq!(rx.recv(), Ok(0));
        assert_eq!(tx.send_timeout(2, Duration::from_secs(5)), Ok(()));
    }

    #[test]
    fn a_slow_consumer_sets_the_producers_pace() {
        let consume_time = Duration::from_millis(10);
        let report = run(2, 6, consume_time);
        // 容量を超えた4個は、どれもコンシューマーが1個受け取るまで待ちます。コンシューマーの1回目の
        // `sleep`は、プロデューサーが時間を測り始める前に始まっていることがあります。2回目からの3回は、
        // 測り始めた後に送られた1個目を受け取ってから順に眠るので、送り終えるまでに少なくとも
        // 3 × 10ミリ秒かかります（sleepは短くはならないので、この下限は確実です。背圧がなければ、
        // 6個は一瞬で送れます）。
        assert!(report.total >= 3 * consume_time, "{:?}", report.total);
        assert_eq!(report.waits.len(), 6);
        // 背圧があってもアイテムは失われず、送った順に届きます。
        assert_eq!(report.received, (0..6).collect::<Vec<_>>());
    }
}

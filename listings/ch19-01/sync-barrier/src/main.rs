//! 「全員の準備ができるまで待つ」には`std::sync::Barrier`を使います。
//!
//! 実行方法: `cargo run -p sync-barrier`
//! 3つのスレッドが別々の長さの準備をしますが、全員の準備が終わるまで誰も本番を始めません。
//! 実行するたびに順序は変わります。

use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

// ANCHOR: barrier
/// 各スレッドについて、本番を始めた時点で準備を終えていたスレッドの数と、リーダーだったかを返します。
/// `i`番目のスレッドの準備には、`step`の`i + 1`倍の時間がかかります。
fn run(workers: usize, step: Duration) -> Vec<(usize, bool)> {
    let barrier = Barrier::new(workers); // `workers`個のスレッドが`wait`したら、全員を通す
    let ready = AtomicUsize::new(0);

    thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|i| {
                let (barrier, ready) = (&barrier, &ready);
                s.spawn(move || {
                    thread::sleep(step * (i as u32 + 1)); // 準備
                    ready.fetch_add(1, Ordering::SeqCst);
                    println!("Worker-{i}: 準備完了。ほかのスレッドを待ちます");

                    let result = barrier.wait(); // 最後の1つが来るまで、ここで止まる
                    // 通されたスレッドのうち1つだけがリーダーになる（1回だけしたい後始末に使える）
                    if result.is_leader() {
                        println!("Worker-{i}: リーダーに選ばれました");
                    }
                    let seen = ready.load(Ordering::SeqCst);
                    println!("Worker-{i}: 本番開始（準備済み{seen}/{workers}）");
                    (seen, result.is_leader())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn main() {
    run(3, Duration::from_millis(30));
}
// ANCHOR_END: barrier

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn nobody_starts_before_everybody_is_ready() {
        let (tx, rx) = mpsc::channel();
        // バリアが壊れていても止まったままにならないように、別スレッドで実行して時間制限付きで待ちます
        // 準備の時間は10・20・30・40ミリ秒。ばらばらに準備を終えても、全員がそろうまで誰も通れません
        thread::spawn(move || tx.send(run(4, Duration::from_millis(10))).unwrap());
        let results = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("バリアを通れませんでした");
        // 全員が、4つすべての準備が終わった後に本番を始めた
        assert!(results.iter().all(|&(seen, _)| seen == 4), "{results:?}");
        // リーダーはちょうど1つ
        assert_eq!(results.iter().filter(|&&(_, leader)| leader).count(), 1);
    }
}

//! 安全なRustでも書ける競合状態: アトミック変数を「読む」と「書く」に分けると更新が失われます。
//!
//! 実行方法: `cargo run -p sync-racy-counter`
//! 10個のスレッドが100回ずつ数えるので期待値は1000ですが、実際の値はそれより小さくなります。
//! 実験を3回繰り返すので、値が毎回変わることも分かります。

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

// ANCHOR: racy
/// `threads`個のスレッドが`per_thread`回ずつ`counter`を1増やし、最終的な値を返します。
fn racy_count(threads: u64, per_thread: u64) -> u64 {
    let counter = AtomicU64::new(0);

    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per_thread {
                    // 読むのと書くのは、それぞれはアトミックでも、2つ合わせてはアトミックではない
                    let temp = counter.load(Ordering::Relaxed);
                    thread::yield_now(); // Pythonの`time.sleep(0.0001)`と同じく、割り込む隙を作る
                    counter.store(temp + 1, Ordering::Relaxed);
                }
            });
        }
    });

    counter.into_inner()
}

fn main() {
    let expected = 10 * 100;
    for attempt in 1..=3 {
        let value = racy_count(10, 100);
        println!(
            "{attempt}回目: 期待値{expected}、実際の値{value}（失われた更新{}回）",
            expected - value
        );
    }
}
// ANCHOR_END: racy

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_lost() {
        // 1回の実験で更新が失われないこともありえなくはないので、上限付きで繰り返します。
        // 実際には、ほぼ毎回1回目で失われます。
        const MAX_ATTEMPTS: usize = 50;
        let lost = (1..=MAX_ATTEMPTS).find_map(|attempt| {
            let value = racy_count(10, 100);
            assert!(
                value <= 1000,
                "数えた回数より大きくなることはありません: {value}"
            );
            (value < 1000).then_some((attempt, value))
        });
        assert!(
            lost.is_some(),
            "{MAX_ATTEMPTS}回試しても更新が失われませんでした"
        );
    }

    #[test]
    fn no_update_is_lost_with_a_single_thread() {
        // スレッドが1つなら割り込む相手がいないので、値は正確です。
        assert_eq!(racy_count(1, 1000), 1000);
    }
}

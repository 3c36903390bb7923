//! 2つのスレッドを起動し、`join`で終わりを待って結果を受け取ります。
//!
//! 実行方法: `cargo run -p spawn-join`
//! Aは200ミリ秒、Bは100ミリ秒かかる処理です。2つは同時に進むので、
//! 全体はおよそ長いほう（200ミリ秒）で終わり、合計の300ミリ秒はかかりません。

use std::thread;
use std::time::{Duration, Instant};

// ANCHOR: worker
fn worker(name: &str, delay: Duration) -> String {
    println!("スレッド{name}: 開始");
    thread::sleep(delay); // 時間のかかる処理の代わり
    println!("スレッド{name}: 完了");
    format!("{name}の結果（{}ミリ秒）", delay.as_millis())
}
// ANCHOR_END: worker

// ANCHOR: main
fn run(delay_a: Duration, delay_b: Duration) -> (String, String) {
    let handle_a = thread::spawn(move || worker("A", delay_a));
    let handle_b = thread::spawn(move || worker("B", delay_b));

    println!("メインスレッド: 2つのスレッドを起動しました");
    thread::sleep(Duration::from_millis(50));
    println!("メインスレッド: 待っている間に別の処理をしました");

    // `join`はスレッドが終わるまで待ち、クロージャの戻り値を`Ok`で包んで返します。
    // スレッドがパニックしていたら`Err`になります。
    let result_a = handle_a.join().expect("スレッドAがパニックしました");
    let result_b = handle_b.join().expect("スレッドBがパニックしました");
    (result_a, result_b)
}

fn main() {
    let start = Instant::now();
    let (a, b) = run(Duration::from_millis(200), Duration::from_millis(100));
    println!("メインスレッド: 受け取った結果: {a}、{b}");
    println!("メインスレッド: 経過時間 {:?}", start.elapsed());
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_results_arrive_and_time_is_the_max_not_the_sum() {
        let (a, b) = (Duration::from_millis(60), Duration::from_millis(40));
        // 2つの待ちは重なるので、長いほう（60 ms）以上で、順に待ったときの合計（100 ms）より
        // はっきり短く終わります（ほかのプログラムがCPUを使っていても揺れないように、
        // 何回かのうち最も速い回で比べます）。
        book_support::assert_waits_overlap("spawn-join", &[a, b], || {
            assert_eq!(
                run(a, b),
                ("Aの結果（60ミリ秒）".into(), "Bの結果（40ミリ秒）".into())
            );
        });
    }
}

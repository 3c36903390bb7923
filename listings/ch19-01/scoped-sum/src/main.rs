//! スコープ付きスレッドで、ローカル変数のスライスを分けて並列に処理します。
//!
//! 実行方法: `cargo run -p scoped-sum`
//! 1〜1000を4つに分けて部分和をスレッドで計算し、`join`で受け取って合計します。
//! 続いて、配列の各部分を別々のスレッドがその場で書き換えます。

use std::thread;

// ANCHOR: sum
/// `numbers`を`threads`個に分け、部分ごとの合計をスレッドで計算して返します。
fn partial_sums(numbers: &[u64], threads: usize) -> Vec<u64> {
    let chunk_len = numbers.len().div_ceil(threads).max(1);
    thread::scope(|s| {
        // 各スレッドは`numbers`の一部（`&[u64]`）を借用するだけで、コピーはしません。
        // いったん`Vec`に集めて全スレッドを起動してから`join`します。
        let handles: Vec<_> = numbers
            .chunks(chunk_len)
            .map(|chunk| s.spawn(move || chunk.iter().sum::<u64>()))
            .collect();
        // クロージャの戻り値が、そのまま`thread::scope`の戻り値になります。
        handles
            .into_iter()
            .map(|h| h.join().expect("集計スレッドがパニックしました"))
            .collect()
    })
}
// ANCHOR_END: sum

// ANCHOR: mut
/// `values`を`threads`個に分け、それぞれのスレッドが自分の部分だけをその場で2乗します。
fn square_in_place(values: &mut [u64], threads: usize) {
    let chunk_len = values.len().div_ceil(threads).max(1);
    thread::scope(|s| {
        // `chunks_mut`が返す部分は互いに重ならないので、
        // それぞれを`&mut [u64]`として別々のスレッドに渡せます。
        for chunk in values.chunks_mut(chunk_len) {
            s.spawn(move || {
                for v in chunk {
                    *v *= *v;
                }
            });
        }
    }); // ここで全スレッドが合流するので、この後は`values`をまた自由に使えます。
}
// ANCHOR_END: mut

// ANCHOR: main
fn main() {
    let numbers: Vec<u64> = (1..=1000).collect();
    let sums = partial_sums(&numbers, 4);
    println!("部分和: {sums:?}");
    println!("合計: {}", sums.iter().sum::<u64>());
    println!("numbersはまだ使えます: {}個", numbers.len());

    let mut values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    square_in_place(&mut values, 3);
    println!("2乗した結果: {values:?}");
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;

    /// テストがわざと起こすパニックのメッセージ（の一部）
    const EXPECTED_PANICS: &[&str] = &[
        "わざとパニックします",
        // それを受けた`thread::scope`のパニック
        "a scoped thread panicked",
    ];

    #[test]
    fn partial_sums_add_up_to_the_sequential_sum() {
        for len in [0, 1, 2, 3, 10, 999, 1000] {
            let numbers: Vec<u64> = (1..=len).collect();
            // 64は、短い並びではスレッドのほうが多く、長い並びでは最後の部分が短くなる分け方です。
            for threads in [1, 2, 3, 4, 8, 64] {
                let sums = partial_sums(&numbers, threads);
                assert_eq!(
                    sums.iter().sum::<u64>(),
                    numbers.iter().sum(),
                    "len {len}, {threads}"
                );
                assert!(
                    sums.len() <= threads,
                    "スレッドが多すぎます: {}",
                    sums.len()
                );
            }
        }
    }

    #[test]
    fn one_partial_sum_per_chunk_in_order() {
        let numbers: Vec<u64> = (1..=1000).collect();
        // 1..=250, 251..=500, 501..=750, 751..=1000 の合計（本文の出力と同じ）
        assert_eq!(partial_sums(&numbers, 4), [31375, 93875, 156375, 218875]);
    }

    /// 本文の主張: ハンドルを`Vec`に集めてから`join`すれば全スレッドが同時に動き、
    /// `map`をつなげて`join`すると1つずつしか動きません。
    #[test]
    fn collecting_handles_first_is_what_makes_threads_overlap() {
        use std::sync::Barrier;
        use std::sync::atomic::{AtomicUsize, Ordering};

        // 集めてから`join`: 4つ全部がそろわないと抜けられない`Barrier`を、本当に全員で通過できます。
        let barrier = Barrier::new(4);
        thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| barrier.wait())).collect();
            for h in handles {
                h.join().unwrap();
            }
        });

        // つなげて`join`: 同時に生きているスレッドは常に1つです。
        let (alive, max_alive) = (AtomicUsize::new(0), AtomicUsize::new(0));
        thread::scope(|s| {
            (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let now = alive.fetch_add(1, Ordering::SeqCst) + 1;
                        max_alive.fetch_max(now, Ordering::SeqCst);
                        thread::sleep(std::time::Duration::from_millis(5));
                        alive.fetch_sub(1, Ordering::SeqCst);
                    })
                })
                .for_each(|h| h.join().unwrap());
        });
        assert_eq!(max_alive.into_inner(), 1);
    }

    /// 本文の主張: `join`しなかったスレッドがパニックすると、全員の終わりを待ってから
    /// `thread::scope`もパニックします。
    #[test]
    fn a_panic_in_an_unjoined_scoped_thread_reaches_the_caller() {
        use std::sync::atomic::{AtomicBool, Ordering};
        book_support::silence_expected_panics(EXPECTED_PANICS);
        let slow_one_finished = AtomicBool::new(false);
        let result = std::panic::catch_unwind(|| {
            thread::scope(|s| {
                s.spawn(|| panic!("わざとパニックします"));
                s.spawn(|| {
                    thread::sleep(std::time::Duration::from_millis(30));
                    slow_one_finished.store(true, Ordering::SeqCst);
                });
            });
        });
        assert!(result.is_err());
        assert!(
            slow_one_finished.load(Ordering::SeqCst),
            "パニックする前に、ほかのスレッドの終わりを待っているはず"
        );
    }

    #[test]
    fn every_element_is_squared_exactly_once() {
        for len in [0, 1, 5, 10, 101] {
            for threads in [1, 2, 3, 4, 200] {
                let mut values: Vec<u64> = (0..len).collect();
                square_in_place(&mut values, threads);
                let expected: Vec<u64> = (0..len).map(|v| v * v).collect();
                assert_eq!(values, expected, "len {len}, {threads}");
            }
        }
    }
}

//! 元のPythonの`Value`と`Array`の例を、スレッドで: `Arc<AtomicI32>`と`Arc<Mutex<Vec<f64>>>`を共有します。
//!
//! 実行方法: `cargo run -p shm-threads`
//! 3つのスレッドがそれぞれ値に1を足し、配列の全要素に自分の番号（1、2、3）を足します。
//! 最終値は3、最終配列は[7.0, 8.0, 9.0, 10.0]になります。

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

// ANCHOR: main
fn run() -> (i32, Vec<f64>) {
    let shared_value = Arc::new(AtomicI32::new(0)); // Pythonの Value('i', 0)
    let shared_array = Arc::new(Mutex::new(vec![1.0, 2.0, 3.0, 4.0])); // Array('d', [...])

    println!("初期値: {}", shared_value.load(Ordering::SeqCst));
    println!("初期配列: {:?}", shared_array.lock().unwrap());

    let handles: Vec<_> = (1..=3)
        .map(|index| {
            let shared_value = Arc::clone(&shared_value);
            let shared_array = Arc::clone(&shared_array);
            thread::spawn(move || {
                // 読んで足して書く、を1つの不可分な操作として行います
                shared_value.fetch_add(1, Ordering::SeqCst);

                // 配列はロックを獲得しないと触れません。ガードがドロップされると解放されます
                let mut array = shared_array.lock().unwrap();
                for x in array.iter_mut() {
                    *x += f64::from(index);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("ワーカーがパニックしました");
    }

    let value = shared_value.load(Ordering::SeqCst);
    let array = shared_array.lock().unwrap().clone();
    println!("最終値: {value}");
    println!("最終配列: {array:?}");
    (value, array)
}

fn main() {
    run();
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_values_are_exact() {
        for _ in 0..20 {
            assert_eq!(run(), (3, vec![7.0, 8.0, 9.0, 10.0]));
        }
    }
}

//! Pythonの`threading.Thread`を継承したワーカーを、Rustでは「スレッドにムーブする構造体」で書きます。
//!
//! 実行方法: `cargo run -p worker-struct`
//! 3つのワーカーがそれぞれ3つのタスク（100ミリ秒ずつ）を実行し、
//! 結果の`Vec<u64>`を`join`の戻り値としてメインスレッドに返します。

use std::io;
use std::thread;
use std::time::Duration;

// ANCHOR: worker
/// 1つのスレッドで実行する処理と、その設定です。スレッドそのものではありません。
struct Worker {
    name: String,
    task_count: u64,
    delay: Duration,
}

impl Worker {
    fn new(name: impl Into<String>, task_count: u64) -> Self {
        Worker {
            name: name.into(),
            task_count,
            delay: Duration::from_millis(100),
        }
    }

    /// スレッドの本体。`self`を値で受け取り、結果を戻り値で返します。
    fn run(self) -> Vec<u64> {
        println!("{}: 開始", self.name);
        let mut results = Vec::new();
        for i in 0..self.task_count {
            results.push(i * i); // 何かの計算の代わり
            println!("{}: タスク{i}完了", self.name);
            thread::sleep(self.delay);
        }
        println!("{}: 全タスク完了", self.name);
        results
    }
}
// ANCHOR_END: worker

// ANCHOR: main
fn main() -> io::Result<()> {
    let mut handles = Vec::new();
    for i in 0..3 {
        let worker = Worker::new(format!("Worker-{i}"), 3);
        let handle = thread::Builder::new()
            .name(worker.name.clone())
            .spawn(move || worker.run())?; // ワーカーはここでスレッドにムーブされます
        handles.push(handle);
    }

    for handle in handles {
        let name = handle.thread().name().unwrap_or("名前なし").to_string();
        // 結果を受け取る道は`join`だけで、それはスレッドが終わった後です。
        let results = handle.join().expect("ワーカーがパニックしました");
        println!("{name}の結果: {results:?}");
    }
    Ok(())
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(name: &str, task_count: u64) -> Worker {
        Worker {
            delay: Duration::ZERO,
            ..Worker::new(name, task_count)
        }
    }

    #[test]
    fn run_returns_the_squares() {
        assert_eq!(quick("W", 3).run(), [0, 1, 4]);
        assert_eq!(quick("W", 0).run(), Vec::<u64>::new());
    }

    #[test]
    fn each_thread_hands_back_its_own_results_through_join() {
        let handles: Vec<_> = (0..4u64)
            .map(|i| {
                let worker = quick(&format!("Worker-{i}"), i + 2);
                thread::Builder::new()
                    .name(worker.name.clone())
                    .spawn(move || worker.run())
                    .unwrap()
            })
            .collect();
        for (i, handle) in (0..4u64).zip(handles) {
            assert_eq!(handle.thread().name(), Some(format!("Worker-{i}").as_str()));
            let expected: Vec<u64> = (0..i + 2).map(|k| k * k).collect();
            assert_eq!(handle.join().unwrap(), expected);
        }
    }
}

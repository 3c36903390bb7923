//! `#[tokio::main]`を使わずにランタイムを組み立て、`Handle`でランタイムにタスクを頼みます。
//!
//! 実行方法: `cargo run -p async-runtime-builder`
//! ランタイムは普通の値です。作って、`block_on`で`Future`を最後まで実行し、ドロップすると止まります。

use std::error::Error;
use std::thread;
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

// ANCHOR: builder
fn build_runtime() -> std::io::Result<Runtime> {
    // `#[tokio::main]`が生成するのも、ほぼこのコードです（ワーカー数の既定値はCPUの数）。
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all() // タイマーとI/Oのドライバを有効にする
        .build()
}

async fn describe_current_runtime() -> String {
    // `asyncio.get_running_loop()`にいちばん近いのが`Handle::current()`です。
    let handle = Handle::current();
    format!(
        "種類 {:?}、ワーカースレッド {}個",
        handle.runtime_flavor(),
        handle.metrics().num_workers()
    )
}

fn main() -> Result<(), Box<dyn Error>> {
    let runtime = build_runtime()?;

    // `block_on`は、渡した`Future`が終わるまで現在のスレッドを止めて実行します。
    let description = runtime.block_on(describe_current_runtime());
    println!("ランタイム: {description}");

    // `Handle`があれば、ランタイムの外の普通のスレッドからもタスクを起動できます
    // （Pythonの`asyncio.run_coroutine_threadsafe`に当たります）。
    let handle = runtime.handle().clone();
    let answer = thread::spawn(move || {
        let task = handle.spawn(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            6 * 7
        });
        handle.block_on(task) // タスクの`JoinHandle`も`Future`なので待てます
    })
    .join()
    .map_err(|_| "スレッドがパニックしました")??;
    println!("別スレッドから頼んだタスクの結果: {answer}");

    // ランタイムの外では`Handle::current()`はパニックします。`try_current`なら`Err`です。
    match Handle::try_current() {
        Ok(_) => println!("ランタイムの中にいます"),
        Err(e) => println!("ランタイムの外: {e}"),
    }

    // 1スレッドのランタイム（asyncioのイベントループと同じ形）も作れます。
    let single = Builder::new_current_thread().enable_all().build()?;
    println!(
        "ランタイム: {}",
        single.block_on(describe_current_runtime())
    );
    Ok(())
} // ここで2つのランタイムがドロップされ、ワーカースレッドが止まります
// ANCHOR_END: builder

#[cfg(test)]
mod tests {
    use tokio::runtime::RuntimeFlavor;

    use super::*;

    #[test]
    fn the_built_runtime_has_two_workers() -> std::io::Result<()> {
        let runtime = build_runtime()?;
        let (flavor, workers) = runtime.block_on(async {
            let handle = Handle::current();
            (handle.runtime_flavor(), handle.metrics().num_workers())
        });
        assert_eq!(flavor, RuntimeFlavor::MultiThread);
        assert_eq!(workers, 2);
        Ok(())
    }

    #[test]
    fn block_on_returns_the_value_of_the_future() -> std::io::Result<()> {
        let runtime = Builder::new_current_thread().enable_all().build()?;
        let description = runtime.block_on(describe_current_runtime());
        assert_eq!(description, "種類 CurrentThread、ワーカースレッド 1個");
        Ok(())
    }

    #[test]
    fn outside_a_runtime_there_is_no_current_handle() {
        assert!(Handle::try_current().is_err());
    }

    #[test]
    fn a_handle_lets_a_plain_thread_spawn_tasks() -> Result<(), Box<dyn Error>> {
        let runtime = build_runtime()?;
        let handle = runtime.handle().clone();
        let value = thread::spawn(move || handle.block_on(handle.spawn(async { 42 })))
            .join()
            .map_err(|_| "panic")??;
        assert_eq!(value, 42);
        Ok(())
    }
}

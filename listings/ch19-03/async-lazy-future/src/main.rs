//! `async fn`を呼び出しただけでは何も実行されないこと（`Future`は要求されるまで動かない）と、
//! `tokio::spawn`したタスクは`.await`しなくても動き始めることを確かめます。
//!
//! 実行方法: `cargo run -p async-lazy-future`

use std::time::Duration;

use tokio::time::sleep;

// ANCHOR: lazy
async fn greet(name: &str) -> String {
    println!("greet({name}): 本体が実行されました");
    format!("こんにちは、{name}さん")
}

#[tokio::main]
async fn main() {
    // 呼び出すと`Future`（これから行う計算を表す値）が返るだけで、本体はまだ動きません。
    let future = greet("A");
    println!("main: greet(\"A\")を呼び出しました");
    sleep(Duration::from_millis(100)).await;
    println!("main: 100ミリ秒待ちましたが、まだ何も起きていません");
    let message = future.await; // ここで初めて本体が実行されます
    println!("main: {message}");

    // `tokio::spawn`はランタイムに渡してタスクにするので、`.await`しなくても動き出します。
    let handle = tokio::spawn(greet("B"));
    println!("main: greet(\"B\")をspawnしました");
    sleep(Duration::from_millis(100)).await;
    println!("main: 100ミリ秒待つ間に、タスクはもう動きました");
    match handle.await {
        Ok(message) => println!("main: {message}"),
        Err(e) => println!("main: タスクが失敗しました: {e}"),
    }
}
// ANCHOR_END: lazy

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    async fn mark(ran: Arc<AtomicBool>) {
        ran.store(true, Ordering::SeqCst);
    }

    #[tokio::test(start_paused = true)]
    async fn a_future_does_nothing_until_it_is_awaited() {
        let ran = Arc::new(AtomicBool::new(false));
        let future = mark(Arc::clone(&ran));
        sleep(Duration::from_secs(1)).await;
        assert!(
            !ran.load(Ordering::SeqCst),
            "呼び出しただけで実行されました"
        );
        future.await;
        assert!(ran.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_future_never_runs() {
        let ran = Arc::new(AtomicBool::new(false));
        drop(mark(Arc::clone(&ran)));
        sleep(Duration::from_secs(1)).await;
        assert!(!ran.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn a_spawned_task_runs_without_being_awaited() {
        let ran = Arc::new(AtomicBool::new(false));
        let _handle = tokio::spawn(mark(Arc::clone(&ran)));
        // 1スレッドのテスト用ランタイムでも、mainが待っている間にタスクが実行されます。
        sleep(Duration::from_millis(100)).await;
        assert!(
            ran.load(Ordering::SeqCst),
            "spawnしたタスクが動いていません"
        );
    }

    #[tokio::test]
    async fn greet_returns_its_message() {
        assert_eq!(greet("A").await, "こんにちは、Aさん");
    }
}

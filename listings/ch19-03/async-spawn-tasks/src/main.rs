//! `tokio::spawn`でタスクを起動して`JoinHandle`で結果を受け取る方法と、
//! `JoinSet`で終わった順に結果を受け取る方法を示します。
//!
//! 実行方法: `cargo run -p async-spawn-tasks`

use std::time::Duration;

use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::{Instant, sleep};

// ANCHOR: spawn
async fn worker(name: String, work: Duration) -> String {
    println!("{name}: 開始");
    sleep(work).await;
    println!("{name}: 完了");
    name
}

async fn spawn_and_join(works: &[Duration]) -> Result<Vec<String>, JoinError> {
    let mut handles: Vec<JoinHandle<String>> = Vec::new();
    for (i, &work) in works.iter().enumerate() {
        // `create_task`に当たります。タスクはこの時点でランタイムに渡され、動き始めます。
        handles.push(tokio::spawn(worker(format!("タスク{i}"), work)));
    }
    println!("起動したタスク数: {}", handles.len());

    let mut results = Vec::new();
    for handle in handles {
        // タスクがパニックしていたら`Err(JoinError)`です。
        results.push(handle.await?);
    }
    Ok(results)
}
// ANCHOR_END: spawn

// ANCHOR: joinset
async fn join_set_in_completion_order(works: &[Duration]) -> Result<Vec<String>, JoinError> {
    let mut set = JoinSet::new();
    for (i, &work) in works.iter().enumerate() {
        set.spawn(worker(format!("セット{i}"), work));
    }

    let mut finished = Vec::new();
    // `join_next`は、終わったタスクから順に結果を返します。空になると`None`です。
    while let Some(result) = set.join_next().await {
        finished.push(result?);
    }
    Ok(finished)
} // `JoinSet`をドロップすると、まだ動いているタスクはすべて`abort`でキャンセルされます（終わるのを待ちません）

#[tokio::main]
async fn main() -> Result<(), JoinError> {
    let ms = Duration::from_millis;

    let start = Instant::now();
    let results = spawn_and_join(&[ms(100), ms(200), ms(300)]).await?;
    println!(
        "すべて完了（起動した順）: {results:?}、{:.1?}",
        start.elapsed()
    );

    let start = Instant::now();
    let finished = join_set_in_completion_order(&[ms(300), ms(100), ms(200)]).await?;
    println!(
        "JoinSet（終わった順）: {finished:?}、{:.1?}",
        start.elapsed()
    );
    Ok(())
}
// ANCHOR_END: joinset

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[tokio::test(start_paused = true)]
    async fn spawned_tasks_run_together_and_results_come_in_spawn_order() -> Result<(), JoinError> {
        let start = Instant::now();
        let results = spawn_and_join(&[S(1), S(2), S(3)]).await?;
        assert_eq!(start.elapsed(), S(3), "合計の6秒ではなく最長の3秒");
        assert_eq!(results, ["タスク0", "タスク1", "タスク2"]);
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn join_set_returns_results_in_completion_order() -> Result<(), JoinError> {
        let start = Instant::now();
        let finished = join_set_in_completion_order(&[S(3), S(1), S(2)]).await?;
        assert_eq!(start.elapsed(), S(3));
        assert_eq!(finished, ["セット1", "セット2", "セット0"]);
        Ok(())
    }

    /// `JoinSet`をドロップすると、タスクは待たれずに`abort`され、次の`.await`の地点で止まります
    /// （Pythonの`TaskGroup`は、抜けるときにタスクの終わりを待ちます）。
    #[tokio::test(start_paused = true)]
    async fn dropping_a_join_set_aborts_its_tasks_without_waiting() {
        let (after_tx, mut after_rx) = oneshot::channel::<()>();
        let mut set = JoinSet::new();
        let handle = set.spawn(async move {
            sleep(S(10)).await;
            after_tx.send(()).expect("ここには来ないはず");
        });
        let start = Instant::now();
        drop(set);
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "ドロップはタスクを待たない"
        );
        // タスクは`sleep`の`.await`で止まったままドロップされ、その先は実行されません。
        assert!(after_rx.try_recv().is_err());
        sleep(S(20)).await;
        assert!(handle.is_finished());
        assert!(after_rx.await.is_err(), "sleepの先は実行されていない");
    }

    /// `spawn_blocking`の処理は`abort`できません。`JoinSet`をドロップしても最後まで動きます。
    #[tokio::test]
    async fn blocking_work_in_a_dropped_join_set_runs_to_the_end() {
        let (started_tx, started_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel();
        let mut set = JoinSet::new();
        set.spawn_blocking(move || {
            started_tx.send(()).expect("テストが待っています");
            release_rx.blocking_recv().expect("テストが合図します");
            done_tx.send(()).expect("テストが待っています");
        });
        started_rx.await.expect("ブロックする処理が始まるはず");
        drop(set); // ここで`abort`が頼まれますが、動き出した処理は止められません
        release_tx.send(()).expect("処理が待っています");
        done_rx.await.expect("ドロップした後も最後まで動くはず");
    }

    /// `TaskGroup`のように全部を待ちたいときは、空になるまで`join_next`するか`join_all`を使います。
    #[tokio::test(start_paused = true)]
    async fn join_all_waits_for_every_task() {
        let mut set = JoinSet::new();
        for secs in [3, 1, 2] {
            set.spawn(async move {
                sleep(S(secs)).await;
                secs
            });
        }
        let start = Instant::now();
        let mut all = set.join_all().await;
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3]);
        assert_eq!(start.elapsed(), S(3));
    }
}

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
} // `JoinSet`をドロップすると、まだ動いているタスクはすべて中止されます

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

    #[tokio::test(start_paused = true)]
    async fn dropping_a_join_set_aborts_its_tasks() {
        let mut set = JoinSet::new();
        let handle = set.spawn(sleep(S(10)));
        assert_eq!(set.len(), 1);
        drop(set);
        sleep(S(1)).await;
        assert!(handle.is_finished(), "ドロップした後もタスクが動いています");
    }
}

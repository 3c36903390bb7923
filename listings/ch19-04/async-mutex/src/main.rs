//! 非同期のコードで、標準ライブラリの`Mutex`とtokioの`Mutex`を使い分けます。
//!
//! 実行方法: `cargo run -p async-mutex`
//! `.await`をまたがない短いロックには`std::sync::Mutex`を使い、3つのタスクが同時に待つので約100ミリ秒で終わります。
//! ロックを持ったまま`.await`する必要があるときは`tokio::sync::Mutex`を使い、3つの呼び出しが順に進むので約300ミリ秒かかります。

use std::sync::Arc;

use tokio::time::{Duration, Instant, sleep};

// ANCHOR: std_brief
/// アクセスを数えてから、時間のかかる処理をします。ロックを持つのは数える間だけです。
async fn handle_request(hits: Arc<std::sync::Mutex<u64>>, work: Duration) -> u64 {
    let number = {
        let mut count = hits.lock().unwrap();
        *count += 1;
        *count
    }; // ここでガードがドロップされ、ロックが解放されます
    sleep(work).await; // ロックを持たずに待つので、ほかのタスクを待たせません
    number
}
// ANCHOR_END: std_brief

// ANCHOR: tokio_across
/// 1本の接続を模擬します。要求を送ってから応答が届くまで、ほかの要求を割り込ませてはいけません。
#[derive(Default)]
struct Connection {
    log: Vec<String>,
}

impl Connection {
    async fn call(&mut self, who: usize, round_trip: Duration) {
        self.log.push(format!("要求{who}"));
        sleep(round_trip).await; // 応答を待つ間も、接続は使用中です
        self.log.push(format!("応答{who}"));
    }
}

async fn use_connection(
    conn: Arc<tokio::sync::Mutex<Connection>>,
    who: usize,
    round_trip: Duration,
) {
    // `lock().await`は、ロックが空くまでスレッドをふさがずに待ちます。
    let mut conn = conn.lock().await;
    // tokioのガードは`Send`なので、持ったまま`.await`しても`tokio::spawn`できます。
    conn.call(who, round_trip).await;
}
// ANCHOR_END: tokio_across

/// `handle_request`を3つのタスクで同時に実行し、各タスクの番号を返します。
async fn run_std(work: Duration) -> (Vec<u64>, u64) {
    let hits = Arc::new(std::sync::Mutex::new(0));
    let handles: Vec<_> = (0..3)
        .map(|_| tokio::spawn(handle_request(Arc::clone(&hits), work)))
        .collect();
    let mut numbers = Vec::new();
    for handle in handles {
        numbers.push(handle.await.expect("タスクがパニックしました"));
    }
    let total = *hits.lock().unwrap();
    (numbers, total)
}

/// `use_connection`を3つのタスクで同時に実行し、接続の記録を返します。
async fn run_tokio(round_trip: Duration) -> Vec<String> {
    let conn = Arc::new(tokio::sync::Mutex::new(Connection::default()));
    let handles: Vec<_> = (0..3)
        .map(|who| tokio::spawn(use_connection(Arc::clone(&conn), who, round_trip)))
        .collect();
    for handle in handles {
        handle.await.expect("タスクがパニックしました");
    }
    std::mem::take(&mut conn.lock().await.log)
}

#[tokio::main]
async fn main() {
    let start = Instant::now();
    let (_, total) = run_std(Duration::from_millis(100)).await;
    println!(
        "std::sync::Mutex: {total}件を数え、経過時間は{:.1?}",
        start.elapsed()
    );

    let start = Instant::now();
    let log = run_tokio(Duration::from_millis(100)).await;
    println!("tokio::sync::Mutex: 経過時間は{:.1?}", start.elapsed());
    for pair in log.chunks(2) {
        println!("  {}", pair.join(" → "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_brief_std_lock_lets_the_tasks_wait_at_the_same_time() {
        let start = Instant::now();
        let (mut numbers, total) = run_std(Duration::from_secs(1)).await;
        // 3つのタスクが同時に1秒待つので、合計の3秒ではなく1秒で終わります。
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(total, 3);
        numbers.sort_unstable();
        assert_eq!(numbers, [1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_tokio_lock_held_across_await_keeps_each_call_whole() {
        let start = Instant::now();
        let log = run_tokio(Duration::from_secs(1)).await;
        // ロックを持ったまま1秒ずつ待つので、3つの呼び出しは順に進み、ちょうど3秒かかります。
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert_eq!(log.len(), 6);
        for pair in log.chunks(2) {
            let who = pair[0].strip_prefix("要求").expect("要求から始まります");
            assert_eq!(
                pair[1],
                format!("応答{who}"),
                "要求と応答の間に割り込まれました: {log:?}"
            );
        }
    }
}

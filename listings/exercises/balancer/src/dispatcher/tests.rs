//! ディスパッチャの単体テスト。ワーカーは同じプロセスの中の模擬ワーカー（`worker::fake`）で、
//! 時計は一時停止した時計です。時間切れやバックオフの時刻を、実際には待たずに正確に確かめられます。

use std::collections::BTreeMap;

use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::*;
use crate::worker::fake::InProcess;

fn config(workers: usize, in_flight: usize, timeout_ms: u64, max_attempts: u32) -> Config {
    Config {
        workers,
        strategy: Strategy::LeastOutstanding,
        in_flight,
        timeout: Duration::from_millis(timeout_ms),
        max_attempts,
    }
}

/// 入力の行をすべて流し、入力を閉じて、終わるまで動かします。結果はidごとに返します。
async fn run_all(config: Config, lines: &[&str]) -> (Summary, BTreeMap<u64, Value>) {
    let (tx, input) = mpsc::channel(lines.len().max(1));
    for line in lines {
        tx.send(Task::parse(line)).await.unwrap();
    }
    drop(tx);
    let (_signals_tx, signals) = mpsc::channel(1);
    let (output, mut results) = tokio::io::duplex(1 << 20);
    let summary = dispatch(
        config,
        Box::new(InProcess),
        input,
        signals,
        Box::new(output),
        ProgressBar::hidden(),
    )
    .await
    .unwrap();
    let mut text = String::new();
    results.read_to_string(&mut text).await.unwrap();
    (summary, by_id(&text))
}

fn by_id(text: &str) -> BTreeMap<u64, Value> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        let id = value["id"].as_u64().unwrap();
        assert!(
            map.insert(id, value).is_none(),
            "id {id} was reported twice"
        );
    }
    map
}

// ANCHOR: race_test
/// 返事が届いているのと同時に締め切りも来ている、という競合をわざと作ります。
/// `biased;`がなければ`select!`は準備のできた枝からランダムに選ぶので、締め切りの枝が選ばれると
/// 終わったタスクのワーカーを殺して渡し直してしまいます（32回のどれかでほぼ確実に起きます）。
#[tokio::test(start_paused = true)]
async fn a_reply_that_is_already_queued_wins_over_the_deadline() {
    for round in 0..32 {
        let (output, mut results) = tokio::io::duplex(1 << 16);
        let (mut dispatcher, mut events) = Dispatcher::new(
            config(1, 1, 1000, 3),
            Box::new(InProcess),
            Box::new(output),
            ProgressBar::hidden(),
        );
        dispatcher.start(0).unwrap();
        // 模擬ワーカーは応答しないので、返事はテストが代わりに送ります
        let task = Task::parse(r#"{"id":7,"fault":"hang"}"#).unwrap();
        dispatcher.dispatch(0, Pending::new(task));
        tokio::time::advance(Duration::from_millis(1000)).await; // 締め切りちょうど
        let generation = dispatcher.slots[0].generation;
        let value = serde_json::value::to_raw_value(&49).unwrap();
        let reply = Event::Reply {
            slot: 0,
            generation,
            id: 7,
            answer: Answer::Value(value),
        };
        dispatcher.events.send(reply).await.unwrap();

        let (tx, input) = mpsc::channel(1);
        drop(tx); // 入力はもうありません
        let (_signals_tx, signals) = mpsc::channel(1);
        dispatcher.run(input, &mut events, signals).await;
        let summary = dispatcher.shutdown(events).await;

        let mut text = String::new();
        results.read_to_string(&mut text).await.unwrap();
        let reported = by_id(&text);
        assert_eq!(reported[&7]["status"], "ok", "round {round}: {text}");
        assert_eq!(reported[&7]["attempts"], 1, "round {round}: {text}");
        assert_eq!(summary.workers, [(1, 0)], "round {round}: no restart");
    }
}
// ANCHOR_END: race_test

// ANCHOR: hang_test
#[tokio::test(start_paused = true)]
async fn a_hanging_task_times_out_and_the_tasks_behind_it_are_requeued_not_blamed() {
    // ワーカー1つに4件まで渡すので、応答しないタスクの後ろに3件が並びます
    let started = Instant::now();
    let (summary, reported) = run_all(
        config(1, 4, 300, 2),
        &[
            r#"{"id":0,"fault":"hang"}"#,
            r#"{"id":1,"sleep_ms":10}"#,
            r#"{"id":2,"sleep_ms":10}"#,
            r#"{"id":3,"sleep_ms":10}"#,
        ],
    )
    .await;
    let hung = &reported[&0];
    assert_eq!(hung["status"], "failed");
    assert_eq!(hung["attempts"], 2);
    assert_eq!(hung["requeued"], 0);
    let error = hung["error"].as_str().unwrap();
    assert!(error.contains("300ms以内に応答がありません"), "{error}");
    for id in 1..=3 {
        // 後ろで待っていたタスクは疑われず、1回の実行で完了します。渡し直しは別に数えます
        let r = &reported[&id];
        assert_eq!(
            (&r["status"], &r["attempts"], &r["requeued"]),
            (&"ok".into(), &1.into(), &1.into()),
            "{r}"
        );
    }
    // 時間切れ（300ms）→再起動まで100ms→id 1〜3（30ms）→もう一度時間切れ（300ms）
    assert_eq!(started.elapsed(), Duration::from_millis(730));
    assert_eq!(summary.requeued, 3);
    assert_eq!(summary.failed, 1);
    assert_eq!(summary.exit_code(), 1);
}
// ANCHOR_END: hang_test

#[tokio::test(start_paused = true)]
async fn a_poison_task_fails_after_k_attempts_with_growing_backoff() {
    let started = Instant::now();
    let (summary, reported) = run_all(
        config(1, 1, 10_000, 3),
        &[r#"{"id":1,"fault":"crash"}"#, r#"{"id":2,"cpu":10}"#],
    )
    .await;
    let poison = &reported[&1];
    assert_eq!(poison["status"], "failed");
    assert_eq!(poison["attempts"], 3);
    let error = poison["error"].as_str().unwrap();
    assert!(
        error.starts_with("このタスクでワーカーが3回失敗したのであきらめました"),
        "{error}"
    );
    assert!(error.contains("exit status: 70"), "{error}");
    assert_eq!(reported[&2]["value"], 385);
    // 再起動を100ms、200ms待ってから3回目。3回目のあとの再起動（400ms）は、id 2のために待ちます
    assert_eq!(started.elapsed(), Duration::from_millis(100 + 200 + 400));
    assert_eq!(summary.workers, [(1, 3)]);
}

#[test]
fn backoff_doubles_and_is_capped() {
    let ms: Vec<u128> = (1..=8).map(|n| backoff(n).as_millis()).collect();
    assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
}

// ANCHOR: exit_code_test
#[test]
fn the_exit_status_counts_failures_like_gnu_parallel() {
    let code = |failed, invalid| {
        Summary {
            failed,
            invalid,
            ..Summary::default()
        }
        .exit_code()
    };
    assert_eq!(code(0, 0), 0);
    assert_eq!(code(3, 0), 3);
    assert_eq!(code(99, 1), 100);
    assert_eq!(code(101, 0), 101);
    assert_eq!(code(u64::MAX, 1), 101);
    let interrupted = |signal| Summary {
        failed: 5,
        interrupted: Some(signal),
        ..Summary::default()
    };
    assert_eq!(interrupted(Signal::Interrupt).exit_code(), 130);
    assert_eq!(interrupted(Signal::Terminate).exit_code(), 143);
    assert_eq!(interrupted(Signal::Hangup).exit_code(), 129);
}
// ANCHOR_END: exit_code_test

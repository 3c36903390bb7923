//! タイムアウトとキャンセル: `tokio::time::timeout`、`JoinHandle::abort`、
//! `JoinHandle`のドロップ（切り離すだけでキャンセルしない）と`AbortOnDropHandle`、
//! 協調的にキャンセルする`CancellationToken`、そして「`Future`のキャンセルとはドロップのこと」。
//!
//! 実行方法: `cargo run -p async-timeout-cancel`

use std::time::Duration;

use tokio::task::{JoinError, JoinHandle};
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

// ANCHOR: timeout
/// 最後まで進まずにドロップされたとき、どこで止まったかを表示する値。
struct DropNotice {
    place: &'static str,
    armed: bool,
}

impl DropNotice {
    fn new(place: &'static str) -> Self {
        DropNotice { place, armed: true }
    }

    /// 最後まで進んだので、もう知らせない。
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for DropNotice {
    fn drop(&mut self) {
        if self.armed {
            println!("  ドロップされました: {}", self.place);
        }
    }
}

async fn slow_operation(work: Duration) -> &'static str {
    let notice = DropNotice::new("slow_operationはsleepの途中で止まりました");
    sleep(work).await;
    notice.disarm();
    "完了"
}

async fn cancellable_task() -> &'static str {
    let notice = DropNotice::new("cancellable_taskはsleepの途中で止まりました");
    sleep(Duration::from_secs(5)).await;
    println!("この行は実行されません");
    notice.disarm();
    "キャンセルされませんでした"
}

async fn timeout_and_abort(limit: Duration) {
    // `asyncio.wait_for`に当たります。期限を過ぎると中の`Future`はドロップされます。
    match timeout(limit, slow_operation(limit * 2)).await {
        Ok(result) => println!("結果: {result}"),
        Err(elapsed) => println!("タイムアウトしました（{elapsed}）"),
    }

    let handle: JoinHandle<&str> = tokio::spawn(cancellable_task());
    sleep(limit).await;
    handle.abort(); // `task.cancel()`に当たります
    match handle.await {
        Ok(result) => println!("結果: {result}"),
        Err(e) if e.is_cancelled() => println!("キャンセルされたタスクを確認しました"),
        Err(e) => println!("タスクがパニックしました: {e}"),
    }
}
// ANCHOR_END: timeout

// ANCHOR: detach
/// `work`だけ待ってから終わるタスク。最後まで進まずにドロップされたら、そう表示します。
async fn background(place: &'static str, work: Duration) {
    let notice = DropNotice::new(place);
    sleep(work).await;
    println!("  最後まで動きました: {place}");
    notice.disarm();
}

async fn drop_the_handles(work: Duration) {
    println!("JoinHandleをドロップします");
    let handle = tokio::spawn(background("JoinHandleを捨てたタスク", work));
    drop(handle); // 切り離す（detach）だけです。タスクは動き続けます
    sleep(work * 2).await;

    println!("AbortOnDropHandleをドロップします");
    let handle =
        AbortOnDropHandle::new(tokio::spawn(background("AbortOnDropHandleのタスク", work)));
    sleep(work / 2).await;
    drop(handle); // ドロップすると`abort`でキャンセルされます
    sleep(work * 2).await;
}
// ANCHOR_END: detach

// ANCHOR: token
/// 1ステップずつ処理を進め、キャンセルを頼まれたら後始末をしてから終わります。
async fn worker(token: CancellationToken, step: Duration) -> u32 {
    let mut done = 0;
    loop {
        tokio::select! {
            biased; // 上の枝から順に調べます（キャンセルを優先）
            // キャンセルされたら、もう次のステップには進みません。
            _ = token.cancelled() => break,
            _ = sleep(step) => {
                done += 1;
                println!("ワーカー: ステップ{done}が終わりました");
            }
        }
    }
    // 協調的なキャンセルなので、ここでは`.await`を使った後始末もできます。
    println!("ワーカー: キャンセルを受け取りました。途中結果を保存します");
    sleep(step / 2).await;
    println!("ワーカー: 保存しました");
    done
}

async fn cooperative_cancel(step: Duration, cancel_after: Duration) -> Result<u32, JoinError> {
    let token = CancellationToken::new();
    let handle = tokio::spawn(worker(token.clone(), step));
    sleep(cancel_after).await;
    token.cancel(); // 同じトークンのクローンを持つ全員に、キャンセルを知らせます
    handle.await // ワーカーが後始末を終えて返るまで待ちます
}

#[tokio::main]
async fn main() -> Result<(), JoinError> {
    let limit = Duration::from_millis(100);
    timeout_and_abort(limit).await;
    drop_the_handles(limit).await;

    let step = Duration::from_millis(200);
    let start = Instant::now();
    let done = cooperative_cancel(step, step * 5 / 2).await?;
    println!("終わったステップ: {done}、{:.1?}", start.elapsed());
    Ok(())
}
// ANCHOR_END: token

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn timeout_gives_up_exactly_at_the_limit() {
        let start = Instant::now();
        let result = timeout(2 * SEC, slow_operation(3 * SEC)).await;
        assert!(result.is_err(), "{result:?}");
        assert_eq!(start.elapsed(), 2 * SEC);
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_lets_a_fast_operation_finish() {
        let result = timeout(2 * SEC, slow_operation(SEC)).await;
        assert_eq!(result, Ok("完了"));
    }

    #[tokio::test(start_paused = true)]
    async fn abort_cancels_the_task_at_its_await() {
        let start = Instant::now();
        let handle = tokio::spawn(cancellable_task());
        sleep(SEC).await;
        handle.abort();
        let error = handle.await.expect_err("キャンセルしたタスクは`Err`");
        assert!(error.is_cancelled());
        assert_eq!(start.elapsed(), SEC, "5秒のsleepを待たない");
    }

    /// `JoinHandle`をドロップしても、タスクはキャンセルされずに最後まで動きます。
    #[tokio::test(start_paused = true)]
    async fn dropping_a_join_handle_detaches_the_task() {
        let (done_tx, done_rx) = oneshot::channel();
        let handle = tokio::spawn(async move {
            sleep(10 * SEC).await;
            done_tx.send(()).expect("テストが待っています");
        });
        let start = Instant::now();
        drop(handle);
        done_rx
            .await
            .expect("ハンドルを捨てたタスクも最後まで動くはず");
        assert_eq!(start.elapsed(), 10 * SEC);
    }

    /// `AbortOnDropHandle`をドロップすると、タスクは次の`.await`でキャンセルされます。
    #[tokio::test(start_paused = true)]
    async fn dropping_an_abort_on_drop_handle_cancels_the_task() {
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let handle = AbortOnDropHandle::new(tokio::spawn(async move {
            sleep(10 * SEC).await;
            done_tx.send(()).expect("ここには来ないはず");
        }));
        let start = Instant::now();
        drop(handle);
        // タスクがドロップされると`done_tx`もドロップされるので、`Err`が返ります。
        assert!(done_rx.await.is_err());
        assert_eq!(start.elapsed(), Duration::ZERO, "10秒のsleepを待たない");
    }

    #[tokio::test(start_paused = true)]
    async fn drop_the_handles_takes_four_and_a_half_works() {
        let start = Instant::now();
        drop_the_handles(SEC).await;
        assert_eq!(start.elapsed(), SEC * 9 / 2);
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_and_abort_together_take_two_limits() {
        let start = Instant::now();
        timeout_and_abort(SEC).await;
        assert_eq!(start.elapsed(), 2 * SEC);
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_stops_the_worker_between_steps_and_it_cleans_up() -> Result<(), JoinError> {
        let start = Instant::now();
        // 1秒のステップを2.5秒でキャンセル: 2ステップ終わり、後始末に0.5秒。
        let done = cooperative_cancel(SEC, SEC * 5 / 2).await?;
        assert_eq!(done, 2);
        assert_eq!(start.elapsed(), 3 * SEC);
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn an_already_cancelled_token_stops_the_worker_at_once() {
        let token = CancellationToken::new();
        token.cancel();
        let start = Instant::now();
        assert_eq!(worker(token, SEC).await, 0);
        assert_eq!(start.elapsed(), SEC / 2, "後始末の分だけ");
    }
}

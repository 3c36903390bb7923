//! Pythonの非同期イテレータ（`AsyncCounter`）と非同期ジェネレータ（`fetch_data`）を、
//! `Stream`で書きます。`futures::stream::unfold`、チャネルと`ReceiverStream`、
//! `async_stream::stream!`の3通りで作ります。
//!
//! 実行方法: `cargo run -p async-streams`

use std::pin::pin;
use std::time::Duration;

use async_stream::stream;
use futures::stream::{self, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::sleep;
use tokio_stream::wrappers::ReceiverStream;

// ANCHOR: counter
/// 1からmaxまでを、1つごとに`delay`だけ待ってから返す`Stream`。
fn async_counter(max: u32, delay: Duration) -> impl Stream<Item = u32> {
    // 状態（ここではこれまでに数えた数）と、次の要素を作る`async`ブロックを渡します。
    stream::unfold(0, move |count| async move {
        if count >= max {
            return None; // `StopAsyncIteration`に当たります
        }
        sleep(delay).await; // 要素を作るのに時間がかかる
        let next = count + 1;
        Some((next, next)) // （返す要素, 次の状態）
    })
}
// ANCHOR_END: counter

// ANCHOR: channel
/// 別のタスクがデータを作ってチャネルに送り、受信側を`Stream`として返します。
fn fetch_data(delay: Duration) -> ReceiverStream<String> {
    // 容量1でも、タスクは受信側を待たずに動きます。1つがバッファで待っている間に、
    // 次の1つを作って`send`で待ちます（Pythonのジェネレータより先に進みます）。
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        for i in 0..5 {
            sleep(delay).await;
            if tx.send(format!("データ-{i}")).await.is_err() {
                break; // 受信側がドロップされた: もう誰も読まないので終わります
            }
        }
    }); // `tx`がドロップされると、`Stream`は`None`を返して終わります
    ReceiverStream::new(rx)
}
// ANCHOR_END: channel

// ANCHOR: lazy
/// Pythonの非同期ジェネレータと同じく、要求されるまで動かない`Stream`。
fn fetch_data_lazy(delay: Duration) -> impl Stream<Item = String> {
    stream! {
        for i in 0..5 {
            // `next().await`で要求されたときだけ、ここから次の`yield`まで進みます。
            sleep(delay).await;
            yield format!("データ-{i}");
        }
    }
}
// ANCHOR_END: lazy

// ANCHOR: main
#[tokio::main]
async fn main() {
    println!("非同期イテレーション:");
    // `unfold`のStreamは自分への参照を持ちうるので、`next()`の前に`pin!`で固定します。
    let mut counter = pin!(async_counter(5, Duration::from_millis(50)));
    while let Some(number) = counter.next().await {
        println!("受信: {number}");
    }

    println!("チャネルを使ったジェネレータ:");
    let mut data = fetch_data(Duration::from_millis(30));
    while let Some(item) = data.next().await {
        println!("処理: {item}");
    }

    println!("stream!で書いたジェネレータ:");
    let mut data = pin!(fetch_data_lazy(Duration::from_millis(30)));
    while let Some(item) = data.next().await {
        println!("処理: {item}");
    }

    // `Iterator`と同じように、アダプタをつないで使えます。
    let squares: Vec<u32> = async_counter(4, Duration::from_millis(10))
        .map(|n| n * n)
        .collect()
        .await;
    println!("2乗: {squares:?}");
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use tokio::runtime::Handle;
    use tokio::time::Instant;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_counter_yields_one_to_max_and_waits_for_each() {
        let start = Instant::now();
        let numbers: Vec<u32> = async_counter(5, Duration::from_millis(500)).collect().await;
        assert_eq!(numbers, [1, 2, 3, 4, 5]);
        assert_eq!(start.elapsed(), Duration::from_millis(2500));
    }

    #[tokio::test(start_paused = true)]
    async fn the_counter_is_lazy_too() {
        let start = Instant::now();
        let counter = async_counter(5, Duration::from_millis(500));
        let first_two: Vec<u32> = counter.take(2).collect().await;
        assert_eq!(first_two, [1, 2]);
        // 要求された2つ分しか待っていません。
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn the_channel_stream_yields_five_items_then_ends() {
        let start = Instant::now();
        let items: Vec<String> = fetch_data(Duration::from_millis(300)).collect().await;
        assert_eq!(
            items,
            ["データ-0", "データ-1", "データ-2", "データ-3", "データ-4"]
        );
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
    }

    /// 容量1のチャネルでも、プロデューサーは受信側より先に進みます。
    #[tokio::test(start_paused = true)]
    async fn the_channel_producer_runs_ahead_of_the_consumer() {
        let delay = Duration::from_secs(1);
        let mut data = fetch_data(delay);
        sleep(10 * delay).await; // 誰も読まずに待つ
        let start = Instant::now();
        assert_eq!(data.next().await.as_deref(), Some("データ-0"));
        assert_eq!(data.next().await.as_deref(), Some("データ-1"));
        // 1つ目はバッファで、2つ目は`send`の中で、読まれる前から待っていました。
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(data.next().await.as_deref(), Some("データ-2"));
        assert_eq!(start.elapsed(), delay, "3つ目は要求されてから作られる");
    }

    /// `stream!`の`Stream`は、`next()`で要求されるまで何もしません。
    #[tokio::test(start_paused = true)]
    async fn the_stream_macro_does_nothing_until_polled() {
        let delay = Duration::from_secs(1);
        let mut data = pin!(fetch_data_lazy(delay));
        sleep(10 * delay).await; // 誰も読まずに待つ
        let start = Instant::now();
        assert_eq!(data.next().await.as_deref(), Some("データ-0"));
        assert_eq!(
            start.elapsed(),
            delay,
            "待っていた10秒の間には何も作っていない"
        );
        assert_eq!(data.next().await.as_deref(), Some("データ-1"));
        assert_eq!(start.elapsed(), 2 * delay);
        // タスクを起動しないので、裏で動いているものはありません。
        assert_eq!(Handle::current().metrics().num_alive_tasks(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_lazy_stream_yields_five_items_then_ends() {
        let items: Vec<String> = fetch_data_lazy(Duration::from_millis(300)).collect().await;
        assert_eq!(
            items,
            ["データ-0", "データ-1", "データ-2", "データ-3", "データ-4"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_stream_stops_the_producer() {
        let mut data = fetch_data(Duration::from_millis(300));
        assert_eq!(data.next().await.as_deref(), Some("データ-0"));
        assert_eq!(Handle::current().metrics().num_alive_tasks(), 1);
        drop(data);
        // プロデューサーは次の`send`が`Err`になったところで終わります。
        sleep(Duration::from_secs(1)).await;
        assert_eq!(Handle::current().metrics().num_alive_tasks(), 0);
    }
}

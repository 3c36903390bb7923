//! 非同期HTTPクライアント: 1つの`reqwest::Client`で、順に・`join_all`で同時に・
//! `buffer_unordered`で数を制限して、リクエストを送り、かかった時間を比べます。
//!
//! 実行方法: `cargo run -p async-http-fanout`（時間のほとんどは応答を待つ時間なので、デバッグビルドで測れます）
//!
//! プログラムは自分で`127.0.0.1`の空いているポートに小さなHTTPサーバー（axum）を起動し、
//! そこにリクエストを送るので、インターネットにつながっていなくても動きます。
//! `/delay/{ms}`はmsミリ秒待ってから応答します（httpbin.orgの`/delay/{秒}`に倣っていますが、
//! 単位はミリ秒、上限は10秒です）。
//!
//! 本物のサイトで試すときは、URLを引数に渡します（このときサーバーは起動しません）:
//! `cargo run -p async-http-fanout -- https://www.rust-lang.org/ https://example.com/`

use std::env;
use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use futures::future::join_all;
use futures::stream::{self, StreamExt};
use reqwest::Client;
use tokio::net::TcpListener;
use tokio::time::{Instant, sleep};

/// サーバーが待つ時間の上限（ミリ秒）。
const MAX_DELAY_MS: u64 = 10_000;

// ANCHOR: server
/// `GET /delay/{ms}`: msミリ秒待ってから、待った時間をJSONで返します。
async fn delay(Path(ms): Path<u64>) -> String {
    let ms = ms.min(MAX_DELAY_MS);
    sleep(Duration::from_millis(ms)).await; // 待つ間もサーバーは他の接続に応答できます
    format!("{{\"delay_ms\":{ms}}}")
}

/// OSが選んだ空きポートでサーバーを起動し、そのアドレスを返します。
async fn start_server() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().route("/delay/{ms}", get(delay));
    // サーバーは別のタスクで動かし続けます。`main`が終わるとランタイムごと止まります。
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("サーバーが止まりました: {e}");
        }
    });
    Ok(addr)
}
// ANCHOR_END: server

// ANCHOR: fetch
type Fetched = Result<usize, reqwest::Error>;

/// URLを1つ取得して本文のバイト数を返します。失敗はそのURLの`Err`になるだけです。
async fn fetch(client: &Client, url: &str, limit: Duration) -> Fetched {
    let response = client
        .get(url)
        .timeout(limit)
        .send()
        .await?
        .error_for_status()?;
    Ok(response.bytes().await?.len())
}

/// 1つずつ順に: 前のリクエストが終わるまで、次のリクエストを送りません。
async fn sequential(client: &Client, urls: &[String], limit: Duration) -> Vec<Fetched> {
    let mut results = Vec::new();
    for url in urls {
        results.push(fetch(client, url, limit).await);
    }
    results
}

/// 全部を同時に: `asyncio.gather`に当たります。結果はURLの順に並びます。
async fn concurrent(client: &Client, urls: &[String], limit: Duration) -> Vec<Fetched> {
    join_all(urls.iter().map(|url| fetch(client, url, limit))).await
}

/// 同時に送るのは最大`max_in_flight`件まで。結果は終わった順に出てきます。
async fn bounded(
    client: &Client,
    urls: &[String],
    limit: Duration,
    max_in_flight: usize,
) -> Vec<Fetched> {
    stream::iter(urls)
        .map(|url| fetch(client, url, limit))
        .buffer_unordered(max_in_flight)
        .collect()
        .await
}
// ANCHOR_END: fetch

fn describe(result: &Fetched) -> String {
    match result {
        Ok(bytes) => format!("成功（{bytes}バイト）"),
        Err(e) if e.is_timeout() => "失敗: タイムアウト".to_string(),
        Err(e) => match e.status() {
            Some(status) => format!("失敗: HTTP {status}"),
            None => format!("失敗: {e}"),
        },
    }
}

fn successes(results: &[Fetched]) -> usize {
    results.iter().filter(|r| r.is_ok()).count()
}

/// 同じURLの並びを、順に取得した場合と同時に取得した場合で比べます。
async fn compare(client: &Client, urls: &[String], limit: Duration) {
    let start = Instant::now();
    let results = sequential(client, urls, limit).await;
    let sequential_time = start.elapsed();
    println!("順に実行: {sequential_time:.1?}");
    for (url, result) in urls.iter().zip(&results) {
        println!("  {url}: {}", describe(result));
    }

    let start = Instant::now();
    let results = concurrent(client, urls, limit).await;
    let concurrent_time = start.elapsed();
    println!("同時に実行（join_all）: {concurrent_time:.1?}");
    for (url, result) in urls.iter().zip(&results) {
        println!("  {url}: {}", describe(result));
    }
    let speedup = sequential_time.as_secs_f64() / concurrent_time.as_secs_f64();
    println!("高速化: {speedup:.2}倍");
}

// ANCHOR: main
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // `Client`は中に接続プールを持ちます。1つ作って使い回せば、同じホストへの接続が再利用されます。
    let client = Client::builder()
        .user_agent("ch19-async-http-fanout")
        .build()?;

    let args: Vec<String> = env::args().skip(1).collect();
    if !args.is_empty() {
        compare(&client, &args, Duration::from_secs(10)).await;
        return Ok(());
    }

    let base = format!("http://{}", start_server().await?);
    let limit = Duration::from_millis(300); // 1リクエストあたりのタイムアウト
    let urls = [
        format!("{base}/delay/100"),
        format!("{base}/delay/200"),
        format!("{base}/delay/1000"),   // タイムアウトします
        format!("{base}/no-such-page"), // 404になります
    ];
    compare(&client, &urls, limit).await;

    let twenty = vec![format!("{base}/delay/100"); 20];
    let start = Instant::now();
    let results = bounded(&client, &twenty, limit, 5).await;
    println!(
        "buffer_unordered(5)で100ミリ秒を20件: 成功{}件、{:.1?}",
        successes(&results),
        start.elapsed()
    );

    // 1回目は100本の接続を新しく張ります。2回目は、プールに残った接続を使い回します。
    let hundred = vec![format!("{base}/delay/100"); 100];
    for round in ["新しい接続", "プールの接続を再利用"] {
        let start = Instant::now();
        let results = concurrent(&client, &hundred, Duration::from_secs(5)).await;
        let elapsed = start.elapsed();
        println!(
            "join_allで100ミリ秒を100件（{round}）: 成功{}件、{elapsed:.1?}（1件分の{:.2}倍）",
            successes(&results),
            elapsed.as_secs_f64() / 0.1
        );
    }
    Ok(())
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Barrier;
    use tokio::time::timeout;

    use super::*;

    async fn setup() -> Result<(Client, String), Box<dyn Error>> {
        let base = format!("http://{}", start_server().await?);
        Ok((Client::builder().build()?, base))
    }

    /// テスト用のサーバー: `together`件のリクエストが同時に届くまで、どれにも応答しません。
    /// 同時に処理中だったリクエストの最大数も数えます。時計に頼らずに「同時に送った」ことを確かめられます。
    async fn start_gathering_server(
        together: usize,
    ) -> Result<(String, Arc<AtomicUsize>), Box<dyn Error>> {
        let barrier = Arc::new(Barrier::new(together));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let max = Arc::clone(&max_in_flight);
        let handler = move || {
            let (barrier, in_flight, max) = (
                Arc::clone(&barrier),
                Arc::clone(&in_flight),
                Arc::clone(&max),
            );
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                barrier.wait().await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                "ok"
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/gather", listener.local_addr()?);
        let app = Router::new().route("/gather", get(handler));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((url, max_in_flight))
    }

    /// 順に送っていたら100件がそろわないので、`timeout`（止まらないための保険）で失敗します。
    const NO_HANG: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn join_all_has_all_hundred_requests_in_flight_at_once() -> Result<(), Box<dyn Error>> {
        let (url, max_in_flight) = start_gathering_server(100).await?;
        let client = Client::new();
        let urls = vec![url; 100];
        let results = timeout(NO_HANG, concurrent(&client, &urls, NO_HANG)).await?;
        assert_eq!(successes(&results), 100);
        assert_eq!(max_in_flight.load(Ordering::SeqCst), 100);
        Ok(())
    }

    #[tokio::test]
    async fn buffer_unordered_keeps_exactly_the_limit_in_flight() -> Result<(), Box<dyn Error>> {
        let (url, max_in_flight) = start_gathering_server(2).await?;
        let client = Client::new();
        let urls = vec![url; 6];
        let results = timeout(NO_HANG, bounded(&client, &urls, NO_HANG, 2)).await?;
        assert_eq!(successes(&results), 6);
        // 2件ずつそろわなければ応答しないので、2件は同時に送っています。2件を超えることもありません。
        assert_eq!(max_in_flight.load(Ordering::SeqCst), 2);
        Ok(())
    }

    // この2つのテストでは、サーバーの待ちもクライアントのタイムアウトも一時停止した時計で測ります。
    // ランタイムが時計を次の期限まで進めるのは、進められるタスクも届いたデータもないときだけです。
    // ローカルの接続では書いたデータがすぐ相手に届くので、読み書きの途中で時計が進むことはありません。
    #[tokio::test(start_paused = true)]
    async fn sequential_requests_take_at_least_the_sum() -> Result<(), Box<dyn Error>> {
        let (client, base) = setup().await?;
        let urls = vec![format!("{base}/delay/50"); 3];
        let start = Instant::now();
        let results = sequential(&client, &urls, Duration::from_secs(5)).await;
        assert!(start.elapsed() >= Duration::from_millis(150));
        assert_eq!(successes(&results), 3);
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn errors_stay_with_their_url_and_do_not_stop_the_others() -> Result<(), Box<dyn Error>> {
        let (client, base) = setup().await?;
        let urls = [
            format!("{base}/delay/10"),
            format!("{base}/delay/10000"),
            format!("{base}/no-such-page"),
            format!("{base}/delay/20"),
        ];
        let results = concurrent(&client, &urls, Duration::from_millis(200)).await;
        assert_eq!(results[0].as_ref().ok(), Some(&"{\"delay_ms\":10}".len()));
        assert!(results[1].as_ref().is_err_and(|e| e.is_timeout()));
        let status = results[2].as_ref().err().and_then(|e| e.status());
        assert_eq!(status, Some(reqwest::StatusCode::NOT_FOUND));
        assert!(results[3].is_ok());
        assert_eq!(describe(&results[1]), "失敗: タイムアウト");
        assert_eq!(describe(&results[2]), "失敗: HTTP 404 Not Found");
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn the_delay_endpoint_waits_the_given_milliseconds_up_to_ten_seconds() {
        let start = Instant::now();
        assert_eq!(delay(Path(250)).await, "{\"delay_ms\":250}");
        assert_eq!(start.elapsed(), Duration::from_millis(250));
        let start = Instant::now();
        assert_eq!(delay(Path(60_000)).await, "{\"delay_ms\":10000}");
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }
}

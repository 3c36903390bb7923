//! ベンチマーク（テストではありません）: 応答までに50ミリ秒かかるページ200個を、
//! `--concurrency 1`と`--concurrency 32`で取得し、かかった時間の比を表示します。
//!
//! 実行方法: `cargo bench -p scraper-tool`（リリースビルドの`scrape`を使います）
//! サーバーは同じプロセスの中に`127.0.0.1:0`で立てるので、インターネットには接続しません。
//! 時間は`scrape`のプロセスを起動してから終わるまでで、起動やrobots.txtの取得も含みます。

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Gauge, Site, scrape, slow};

const PAGES: usize = 200;
const LATENCY: Duration = Duration::from_millis(50);

#[tokio::main]
async fn main() {
    let paths: Vec<String> = (0..PAGES).map(|i| format!("/page/{i}")).collect();
    let routes = paths
        .iter()
        .map(|p| (p.as_str(), slow(p, LATENCY)))
        .collect();
    let site = Site::start(routes, Arc::new(Gauge::default())).await;
    let dir = tempfile::tempdir().expect("一時ディレクトリを作れません");
    let input = dir.path().join("urls.txt");
    let list: String = paths.iter().map(|p| site.url(p) + "\n").collect();
    std::fs::write(&input, list).expect("URLの一覧を書けません");
    let input = input
        .to_str()
        .expect("一時ディレクトリのパスがUTF-8ではありません");

    println!("{PAGES}ページ（応答までそれぞれ{LATENCY:?}）を1つのホストから取得します");
    let mut times = Vec::new();
    for concurrency in ["1", "32"] {
        let started = Instant::now();
        // ホストごとの上限と間隔は、全体の上限だけが効くように緩めます。
        let run = scrape(&[
            "--input",
            input,
            "--concurrency",
            concurrency,
            "--per-host",
            "32",
            "--delay",
            "0ms",
        ])
        .await;
        let elapsed = started.elapsed();
        assert!(run.status.success(), "{}", run.stderr);
        let pages = run
            .records
            .iter()
            .filter(|r| r["outcome"] == "page")
            .count();
        assert_eq!(pages, PAGES, "すべてのページを取得できていません");
        println!(
            "--concurrency {concurrency:>2}: {:6.2}秒",
            elapsed.as_secs_f64()
        );
        times.push(elapsed);
    }
    let ratio = times[0].as_secs_f64() / times[1].as_secs_f64();
    println!("速さの比: {ratio:.1}倍（目標: 25倍以上）");
}

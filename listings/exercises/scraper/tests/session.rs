//! 解答例のページに載せる実行例（`session.txt`）が、本物の実行と一致していることを確かめます。
//!
//! 小さなサイトをローカルに立て、端末で実行したときと同じ並び（標準出力の記録の後に、
//! 標準エラーの要約）で記録します。ポート番号とかかった時間・速さは実行のたびに変わるので伏せ
//! （`varies`）、並行に取得するので行の順序も問いませんが、文言とほかの数値は比べます。
//! 記録し直すには: `cargo xtask bless scraper-tool`

use std::path::Path;
use std::sync::Arc;

use crate::common::*;

async fn session() -> String {
    let site = Site::start(
        vec![
            ("/robots.txt", robots("User-agent: *\nDisallow: /drafts/\n")),
            (
                "/",
                html(
                    "小さなサイト",
                    &[
                        "/about",
                        "/news",
                        "/drafts/new",
                        "/logo.png",
                        "/old",
                        "https://www.rust-lang.org/",
                    ],
                ),
            ),
            ("/about", html("このサイトについて", &["/"])),
            ("/news", html("お知らせ", &["/", "/about"])),
            ("/drafts/new", html("下書き", &[])),
            (
                "/logo.png",
                Route::Text {
                    content_type: "image/png",
                    body: "\u{89}PNG".into(),
                },
            ),
        ],
        Arc::new(Gauge::default()),
    )
    .await;
    let url = site.url("/");
    let run = scrape(&[&url, "--depth", "1"]).await;
    format!(
        "$ scrape {url} --depth 1\n{}{}$ echo $?\n{}\n",
        run.stdout,
        run.stderr,
        run.status.code().unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_txt_matches_a_fresh_run() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("session.txt");
    book_support::assert_matches_recording(path, &session().await, varies());
}

/// 実行のたびに変わってよいもの: ポート番号、かかった時間と速さ。
/// 並行に取得するので、行の順序も問いません
fn varies() -> book_support::Varies {
    book_support::Varies::nothing()
        .redact("[PORT]", r"127\.0\.0\.1:(?<redacted>\d+)")
        .redact("[ELAPSED_MS]", r#""elapsed_ms":(?<redacted>\d+)"#)
        .redact("[SECONDS]", r"(?<redacted>\d+\.\d+)秒で")
        .redact("[RATE]", r"（(?<redacted>\d+\.\d+)件/秒）")
        .any_line_order()
}

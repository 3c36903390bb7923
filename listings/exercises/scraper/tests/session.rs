//! 解答例のページに載せる実行例（`session.txt`）が、本物の実行と一致していることを確かめます。
//!
//! 小さなサイトをローカルに立て、端末で実行したときと同じ並び（標準出力の記録の後に、
//! 標準エラーの要約）で記録します。ポート番号や時間などの数値は実行のたびに変わるので無視し
//! （`output.txt`の検査と同じ規則）、並行に取得するので行の順序も無視しますが、文言は比べます。
//! 記録し直すには: `SCRAPER_BLESS=1 cargo test -p scraper-tool --test session`

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::*;

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

fn line_counts(text: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        *counts.entry(book_support::normalise(line)).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_txt_matches_a_fresh_run() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("session.txt");
    let actual = session().await;
    if std::env::var_os("SCRAPER_BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let recorded = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        line_counts(&recorded),
        line_counts(&actual),
        "session.txt no longer matches a fresh run (numbers and line order are ignored).\n\
         Re-record it with `SCRAPER_BLESS=1 cargo test -p scraper-tool --test session`.\n\
         --- fresh run ---\n{actual}"
    );
}

//! 練習問題1の解答例: 複数のサイトを同時に、行儀よく取得するWebスクレイパー`scrape`です。
//!
//! 実行例: `cargo run --release -p scraper-tool -- https://www.rust-lang.org/ --depth 1 -o pages.jsonl`
//!
//! URLごとに、ステータス・最終的なURL・タイトル・`meta description`・`h1`・リンクの数・
//! バイト数・かかった時間を1行のJSON（JSON Lines）で書き出し、最後に要約を標準エラーに出します。
//! robots.txtに従い、ホストごとの同時リクエスト数と間隔を守り、一時的な失敗は間隔を延ばしながらやり直します。
//! 終了コードは、開始URLをすべて取得できれば0、取得できなかったものがあれば1、
//! 使い方の誤りなどで始められなければ2、Ctrl-Cで中断したら130です。
//!
//! モジュール: `cli`（引数）、`record`（出力の1行）、`crawl`（取得のループ）、`host`（ホストごとの
//! 状態とrobots.txt）、`fetch`（HTTPとやり直し）、`page`（1つのURLの取得とHTMLの解析）、`summary`（要約）。

mod cli;
mod crawl;
mod fetch;
mod host;
mod page;
mod record;
mod summary;

use std::error::Error;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use reqwest::Client;
use tokio::sync::Semaphore;

use cli::Limits;
pub use cli::{Cli, Verbosity};
use crawl::crawl;
use fetch::build_client;
use host::Hosts;
use page::describe;
pub use summary::Summary;
use summary::progress_bar;

// ANCHOR: main
/// `cli`のとおりに取得し、要約を返します。始められなければ（開始URLがない、出力先を作れない）`Err`です
pub async fn run(cli: Cli) -> Result<Summary, Box<dyn Error>> {
    // まだタスクを1つも起動していないので、ここでファイルを同期的に読んでも困りません。
    let starts = start_urls(cli.urls, cli.input.as_deref())?;
    let out: Box<dyn Write + Send> = match &cli.output {
        Some(path) => Box::new(File::create(path).map_err(|e| format!("{}: {e}", path.display()))?),
        None => Box::new(io::stdout()),
    };
    let crawler = Arc::new(Crawler::new(cli.limits).map_err(|e| describe(&e))?);
    let progress = progress_bar();
    let summary = crawl(crawler, starts, out, &progress).await;
    progress.finish_and_clear();
    let summary = summary?;
    if !cli.verbosity.quiet {
        summary.print();
    }
    Ok(summary)
}

/// すべてのタスクが`Arc`で共有する、取得のための道具と規則
pub(crate) struct Crawler {
    /// 接続プールを持つHTTPクライアント。1つを全員で使います
    pub(crate) client: Client,
    pub(crate) hosts: Arc<Hosts>,
    /// 全体で同時に送れるリクエストの数
    pub(crate) total: Semaphore,
    /// robots.txtの規則を選ぶ名前
    pub(crate) robots_agent: String,
    pub(crate) limits: Limits,
}

impl Crawler {
    pub(crate) fn new(limits: Limits) -> reqwest::Result<Self> {
        let hosts = Arc::new(Hosts::default());
        let client = build_client(&limits, Arc::clone(&hosts))?;
        let agent = limits.user_agent.split(['/', ' ']).next().unwrap_or("*");
        Ok(Crawler {
            client,
            hosts,
            total: Semaphore::new(limits.concurrency.get()),
            robots_agent: agent.to_owned(),
            limits,
        })
    }
}
// ANCHOR_END: main

/// 引数と`--input`のファイルから開始URLを集めます（URLとして正しいかは、後で1つずつ調べます）
pub(crate) fn start_urls(
    mut urls: Vec<String>,
    input: Option<&Path>,
) -> Result<Vec<String>, String> {
    if let Some(path) = input {
        let text = if path == Path::new("-") {
            let mut text = String::new();
            io::stdin().read_to_string(&mut text).map(|_| text)
        } else {
            std::fs::read_to_string(path)
        }
        .map_err(|e| format!("{}: {e}", path.display()))?;
        let lines = text.lines().map(str::trim);
        urls.extend(
            lines
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(String::from),
        );
    }
    if urls.is_empty() {
        return Err("開始URLがありません".into());
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use reqwest::header::{self, HeaderMap, HeaderValue};
    use texting_robots::Robot;
    use tokio::time::Instant;
    use url::Url;

    use crate::cli::parse_duration;
    use crate::crawl::{Frontier, normalize};
    use crate::fetch::{backoff, is_html, retry_after};
    use crate::host::{Host, Robots};
    use crate::page::{charset, meta_charset, parse_html};
    use crate::record::Outcome;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn spellings_of_the_same_page_normalise_to_one_url() {
        let base = url("HTTP://Example.COM:80/dir/page?x=1");
        let same = [
            "/a",
            "./../a#top",
            "/b/../a",
            "http://example.com/a?",
            "HTTP://EXAMPLE.com:80/a#x",
        ];
        for href in same {
            let joined = normalize(base.join(href).unwrap()).unwrap();
            assert_eq!(joined.as_str(), "http://example.com/a", "{href}");
        }
        assert_eq!(
            normalize(url("https://example.com")).unwrap().as_str(),
            "https://example.com/"
        );
        assert_eq!(
            normalize(url("https://example.com/?b=2&a=1"))
                .unwrap()
                .as_str(),
            "https://example.com/?b=2&a=1"
        );
        assert!(normalize(url("mailto:someone@example.com")).is_none());
        assert!(normalize(url("ftp://example.com/file")).is_none());
    }

    #[test]
    fn the_frontier_admits_each_url_once_and_stops_at_max_pages() {
        let mut frontier = Frontier::new(2);
        assert!(frontier.admit(&url("http://a/1"), true));
        assert!(!frontier.admit(&url("http://a/1"), false));
        assert!(frontier.admit(&url("http://a/2"), false));
        assert!(
            !frontier.admit(&url("http://a/3"), false),
            "max_pages reached"
        );
        assert!(
            frontier.admit(&url("http://a/4"), true),
            "start URLs are always admitted"
        );
        frontier.mark_seen(&url("http://a/5"));
        assert!(!frontier.admit(&url("http://a/5"), true));
    }

    #[test]
    fn durations_are_read_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(
            parse_duration("1.5").is_err(),
            "単位のない数は、秒かミリ秒か分からないので読みません"
        );
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn backoff_doubles_and_jitter_only_adds() {
        let base = Duration::from_millis(100);
        for _ in 0..1000 {
            let waits: Vec<Duration> = (1..=4).map(|n| backoff(base, n)).collect();
            for (n, wait) in waits.iter().enumerate() {
                let exact = base * 2u32.pow(n as u32);
                assert!(
                    exact <= *wait && *wait <= exact.mul_f64(1.5),
                    "{n}: {wait:?}"
                );
            }
            assert!(waits.windows(2).all(|w| w[0] < w[1]), "{waits:?}");
        }
        assert_eq!(
            backoff(Duration::from_secs(1), 100).as_secs() / 60,
            1,
            "capped, no overflow"
        );
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert(header::RETRY_AFTER, HeaderValue::from_str(value).unwrap());
            map
        };
        assert_eq!(retry_after(&headers("2")), Some(Duration::from_secs(2)));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let wait = retry_after(&headers(&soon)).unwrap();
        assert!(
            Duration::from_secs(28) <= wait && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn html_gives_title_description_h1s_and_links() {
        let html = r#"<!doctype html><html><head>
            <title>
              Rustの
              本 </title>
            <META NAME="Description" content="  並行処理の
               章 ">
            <base href="https://example.com/docs/">
            </head><body>
            <h1>第<b>19</b>章</h1><h1>練習問題</h1>
            <a href="ch1.html#top">1</a> <a href="/about">about</a>
            <a href="https://other.example/">他</a> <a href="mailto:x@example.com">mail</a>
            <a>名前だけ</a>
            </body></html>"#;
        let parsed = parse_html(
            html.as_bytes(),
            Some("text/html"),
            &url("https://example.com/"),
        );
        assert_eq!(parsed.title.as_deref(), Some("Rustの 本"));
        assert_eq!(parsed.description.as_deref(), Some("並行処理の 章"));
        assert_eq!(parsed.h1, ["第19章", "練習問題"]);
        assert_eq!(parsed.link_count, 4);
        let links: Vec<&str> = parsed.links.iter().map(Url::as_str).collect();
        assert_eq!(
            links,
            [
                "https://example.com/docs/ch1.html#top",
                "https://example.com/about",
                "https://other.example/",
                "mailto:x@example.com"
            ]
        );
    }

    #[test]
    fn shift_jis_is_decoded_from_the_header_or_the_meta_tag() {
        let (body, _, _) = encoding_rs::SHIFT_JIS.encode("<title>日本語のページ</title>");
        let from_header = parse_html(
            &body,
            Some("text/html; charset=Shift_JIS"),
            &url("http://a/"),
        );
        assert_eq!(from_header.title.as_deref(), Some("日本語のページ"));

        let mut with_meta =
            br#"<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">"#.to_vec();
        with_meta.extend_from_slice(&body);
        let from_meta = parse_html(&with_meta, Some("text/html"), &url("http://a/"));
        assert_eq!(from_meta.title.as_deref(), Some("日本語のページ"));

        let utf8 = parse_html(
            "<title>既定はUTF-8</title>".as_bytes(),
            None,
            &url("http://a/"),
        );
        assert_eq!(utf8.title.as_deref(), Some("既定はUTF-8"));
        assert_eq!(
            meta_charset(br#"<meta charset="EUC-JP">"#).as_deref(),
            Some("euc-jp")
        );
        assert_eq!(charset("text/html"), None);
    }

    #[test]
    fn charset_is_read_from_meta_tags_only() {
        let head = |text: &str| meta_charset(text.as_bytes());
        assert_eq!(
            head("<META Charset=Shift_JIS>").as_deref(),
            Some("shift_jis")
        );
        assert_eq!(
            head(r#"<meta http-equiv="Content-Type" content="text/html; charset=euc-jp"/>"#)
                .as_deref(),
            Some("euc-jp")
        );
        // スクリプトの文字列、コメント、ほかのタグ、本文の`charset=`は文字コードの指定ではありません。
        assert_eq!(head(r#"<script>var s = "charset=euc-jp";</script>"#), None);
        assert_eq!(head(r#"<!-- <meta charset="euc-jp"> -->"#), None);
        assert_eq!(
            head(r#"<a href="?charset=euc-jp">x</a> charset=euc-jp"#),
            None
        );
        assert_eq!(head(r#"<metadata charset="euc-jp">"#), None);
        assert_eq!(
            head(r#"<!-- charset=x --><meta charset="utf-8">"#).as_deref(),
            Some("utf-8")
        );
    }

    #[test]
    fn only_html_content_types_are_parsed() {
        assert!(is_html("text/html"));
        assert!(is_html("Text/HTML; charset=utf-8"));
        assert!(is_html("application/xhtml+xml"));
        assert!(!is_html("text/csv"));
        assert!(!is_html("image/png"));
    }

    #[test]
    fn robots_rules_block_paths_and_give_the_crawl_delay() {
        let txt = b"User-agent: *\nDisallow: /private\nCrawl-delay: 0.25\n";
        let robots = Robots::Rules(Box::new(Robot::new("scrape", txt).unwrap()));
        assert!(robots.check(&url("http://a/public")).is_ok());
        assert_eq!(
            robots.check(&url("http://a/private/x")).unwrap_err().0,
            Outcome::Blocked
        );
        assert_eq!(robots.crawl_delay(), Some(Duration::from_millis(250)));
        assert!(Robots::AllowAll.check(&url("http://a/private")).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_host_spaces_request_starts_and_honours_pauses() {
        let host = Host::new(4);
        let delay = Duration::from_millis(100);
        let start = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..3 {
            host.wait_turn(delay).await;
            starts.push(start.elapsed());
        }
        assert_eq!(starts, [Duration::ZERO, delay, delay * 2]);
        host.pause_until(Instant::now() + Duration::from_secs(1));
        host.wait_turn(delay).await;
        assert_eq!(start.elapsed(), delay * 2 + Duration::from_secs(1));
    }
}

//! リダイレクトの範囲、ホスト全体への`Retry-After`、robots.txtの一時的な失敗を、
//! `scrape`を本物のプロセスとして起動して確かめます。

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;

/// サイトの「オープンリダイレクト」で、無関係なホストが取得の範囲に入ってはいけません。
/// 開始URLのリダイレクトはたどり、その行き先が失敗すれば終了コードに表れます
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_stay_in_scope_and_a_redirected_start_url_can_fail() {
    let total = Arc::new(Gauge::default());
    let foreign = Site::start(
        vec![
            ("/", html("無関係なサイト", &["/deeper"])),
            ("/deeper", html("さらに奥", &[])),
            ("/robots.txt", robots("User-agent: *\nDisallow:\n")),
        ],
        Arc::clone(&total),
    )
    .await;
    let moved = Site::start(vec![], Arc::clone(&total)).await; // どのパスも404
    let to_foreign = foreign.url("/");
    let to_foreign_robots = foreign.url("/robots.txt");
    let to_gone = moved.url("/gone");
    let site = Site::start(
        vec![
            ("/", html("入口", &["/go", "/robots-elsewhere"])),
            ("/go", Route::Redirect(to_foreign.clone())),
            ("/robots-elsewhere", Route::Redirect(to_foreign_robots)),
            ("/old", Route::Redirect(to_gone.clone())),
        ],
        Arc::clone(&total),
    )
    .await;

    let run = scrape(&[
        &site.url("/"),
        &site.url("/old"),
        "--depth",
        "3",
        "--delay",
        "0ms",
    ])
    .await;

    // リンク先のリダイレクトは、範囲外なのでたどりません（記録には行き先と理由を書きます）。
    let go = run.record(&site.url("/go"));
    assert_eq!(go["outcome"], "redirect");
    assert_eq!(go["redirect"], to_foreign.as_str());
    assert!(go["error"].as_str().unwrap().contains("範囲外"), "{go}");
    // ページの取得で別のホストの/robots.txtへ飛ばされても、robots.txtとしてはたどりません。
    let elsewhere = run.record(&site.url("/robots-elsewhere"));
    assert_eq!(elsewhere["outcome"], "redirect", "{elsewhere}");
    assert_eq!(
        foreign.paths(),
        Vec::<String>::new(),
        "無関係なホストにリクエストを送りました"
    );

    // 開始URLのリダイレクトはたどり、行き先の404は開始URLの失敗として終了コード1になります。
    assert_eq!(run.record(&site.url("/old"))["outcome"], "redirect");
    assert_eq!(run.record(&to_gone)["status"], 404);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("取得できなかった開始URL: {to_gone}")),
        "{}",
        run.stderr
    );
}

/// 上限（60秒）より長い`Retry-After`は、ホスト全体への「来ないでください」です。
/// そのURLをあきらめるだけでなく、同じホストへのほかのリクエストも送りません
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_retry_after_abandons_the_whole_host() {
    long_retry_after_abandons_the_host(&[]).await;
}

/// やり直しの回数が残っていなくても（`--retries 0`）、ホストはあきらめます
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_retry_after_abandons_the_host_even_without_retries() {
    long_retry_after_abandons_the_host(&["--retries", "0"]).await;
}

async fn long_retry_after_abandons_the_host(extra: &[&str]) {
    let total = Arc::new(Gauge::default());
    let busy = Route::FailFirst {
        times: 100,
        status: 429,
        retry_after: Some(3600),
        then: Box::new(html("来ない", &[])),
    };
    // `/hub`は応答が遅いので、そのリンク（深さ2）が見つかるのは、`/busy`の429を受け取った後です。
    let hub = Route::Html {
        title: "遅い目次".into(),
        links: ["/a", "/b", "/c", "/d"].map(String::from).to_vec(),
        delay: Duration::from_millis(300),
    };
    let pages = ["/a", "/b", "/c", "/d"];
    let mut routes = vec![
        ("/", html("入口", &["/busy", "/hub"])),
        ("/busy", busy),
        ("/hub", hub),
    ];
    routes.extend(pages.iter().map(|p| (*p, html(p, &[]))));
    let site = Site::start(routes, total).await;

    let start = site.url("/");
    let mut args = vec![
        start.as_str(),
        "--depth",
        "2",
        "--per-host",
        "2",
        "--delay",
        "0ms",
    ];
    args.extend_from_slice(extra);
    let run = scrape(&args).await;

    assert_eq!(
        site.hits("/busy"),
        1,
        "3600秒の待ちを求められたURLをやり直しました"
    );
    assert_eq!(run.record(&site.url("/busy"))["status"], 429);
    // 429が返った後には、このホストへ新しいリクエストを1つも送りません（`/hub`は同時に送ったもの）。
    let paths = site.paths();
    let after_busy: Vec<_> = paths[paths.iter().position(|p| p == "/busy").unwrap() + 1..]
        .iter()
        .filter(|p| *p != "/hub")
        .collect();
    assert!(
        after_busy.is_empty(),
        "429の後にも送りました: {after_busy:?}"
    );
    // 429の後に始まるはずだったリクエストは、送らずに、あきらめた理由とともに記録されます。
    // `/hub`は、429より先に送っていれば遅れて届き、そのリンクがあきらめられます。
    // まだ送っていなければ、`/hub`そのものがあきらめられます。
    let others: Vec<_> = (run.records.iter())
        .filter(|r| r["url"] != site.url("/") && r["url"] != site.url("/busy"))
        .filter(|r| r["url"] != site.url("/hub") || r["status"].is_null())
        .collect();
    assert!(!others.is_empty(), "{}", run.stdout);
    for record in others {
        assert!(
            record["error"]
                .as_str()
                .is_some_and(|e| e.contains("あきらめました")),
            "{record}"
        );
    }
    for page in pages {
        assert_eq!(site.hits(page), 0, "{page}");
    }
}

/// robots.txtの5xxは一時的な失敗です。この実行のあいだずっと「すべて禁止」とは覚えず、
/// 次のURLで取得し直します
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_on_robots_txt_is_retried_by_the_next_url() {
    let total = Arc::new(Gauge::default());
    let flaky_robots = Route::FailFirst {
        times: 2,
        status: 503,
        retry_after: None,
        then: Box::new(robots("User-agent: *\nDisallow: /private\n")),
    };
    let site = Site::start(
        vec![
            ("/robots.txt", flaky_robots),
            ("/a", html("A", &[])),
            ("/b", html("B", &[])),
        ],
        total,
    )
    .await;

    let run = scrape(&[
        &site.url("/a"),
        &site.url("/b"),
        "--retries",
        "1",
        "--backoff",
        "10ms",
        "--per-host",
        "1",
        "--delay",
        "0ms",
    ])
    .await;

    // 最初のURLのタスクは2回とも503を受け取り、そのURLは失敗になります。
    // 次のURLのタスクがrobots.txtを取得し直し（3回目で200）、そのページは取得できます。
    assert_eq!(site.hits("/robots.txt"), 3, "{:?}", site.paths());
    let outcomes: Vec<_> = ["/a", "/b"]
        .iter()
        .map(|p| {
            run.record(&site.url(p))["outcome"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        outcomes.contains(&"page".to_owned()) && outcomes.contains(&"error".to_owned()),
        "{outcomes:?}\n{}",
        run.stdout
    );
    assert_eq!(run.status.code(), Some(1));
}

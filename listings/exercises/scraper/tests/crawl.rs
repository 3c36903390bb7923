//! `scrape`を本物のプロセスとして起動し、ローカルのテスト用サイトを取得させて、
//! 問題のページの要件を1つずつ確かめます（インターネットには接続しません）。

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

/// 互いにリンクし合うページ、遅いページ、2回失敗してから成功するページ、Retry-Afterつきの429、
/// robots.txtで禁止されたパス、リダイレクトのループ、HTML以外のファイル、終わりのない本文を持つサイト
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawls_a_site_politely_and_records_every_url_once() {
    let total = Arc::new(Gauge::default());
    let other = Site::start(
        vec![
            ("/", html("サイトBのトップ", &[])),
            ("/other", html("サイトBの別ページ", &[])),
        ],
        Arc::clone(&total),
    )
    .await;
    let other_top = other.url("/");
    let other_page = other.url("/other");
    let site = Site::start(
        vec![
            ("/robots.txt", robots("User-agent: *\nDisallow: /private\n")),
            (
                "/",
                html(
                    "トップ",
                    &[
                        // 書き方は違っても、すべて /a と /b です
                        "/a",
                        "/a#top",
                        "b",
                        "/b/../a",
                        "./a?",
                        "/private/secret",
                        "/slow/1",
                        "/slow/2",
                        "/loop",
                        "/moved",
                        "/away",
                        "/data.csv",
                        "/huge",
                        "/missing",
                        &other_top,
                        "mailto:someone@example.com",
                    ],
                ),
            ),
            ("/a", html("ページA", &["/", "/b", "/c"])),
            ("/b", html("ページB", &["/a", "/deep/1"])),
            ("/c", html("ページC", &[])),
            ("/deep/1", html("深さ2", &["/deep/2"])),
            ("/deep/2", html("深さ3", &[])),
            ("/slow/1", slow("遅いページ1", Duration::from_millis(100))),
            ("/slow/2", slow("遅いページ2", Duration::from_millis(100))),
            ("/loop", Route::Redirect("/loop2".into())),
            ("/loop2", Route::Redirect("/loop".into())),
            ("/moved", Route::Redirect("/target".into())),
            ("/target", html("移動先", &[])),
            ("/away", Route::Redirect(other_page.clone())),
            (
                "/data.csv",
                Route::Text {
                    content_type: "text/csv",
                    body: "a,b\n1,2\n".into(),
                },
            ),
            (
                "/huge",
                Route::Endless {
                    title: "巨大なページ".into(),
                },
            ),
            ("/private/secret", html("秘密", &[])),
        ],
        Arc::clone(&total),
    )
    .await;

    let start = site.url("/");
    let run = scrape(&[
        &start,
        "--depth",
        "2",
        "--concurrency",
        "4",
        "--per-host",
        "2",
        "--delay",
        "0ms",
        "--retries",
        "3",
        "--backoff",
        "100ms",
        "--max-bytes",
        "65536",
        "--timeout",
        "5s",
    ])
    .await;
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);

    // 許可されたページは、それぞれちょうど1回、正しいタイトルで出力されます。
    let pages = [
        ("/", "トップ", 0),
        ("/a", "ページA", 1),
        ("/b", "ページB", 1),
        ("/c", "ページC", 2),
        ("/deep/1", "深さ2", 2),
        ("/slow/1", "遅いページ1", 1),
        ("/slow/2", "遅いページ2", 1),
        ("/moved", "移動先", 1),
        ("/huge", "巨大なページ", 1),
    ];
    for (path, title, depth) in pages {
        let record = run.record(&site.url(path));
        assert_eq!(record["outcome"], "page", "{record}");
        assert_eq!(record["title"], title, "{record}");
        assert_eq!(record["h1"], json!([title]), "{record}");
        assert_eq!(record["depth"], depth, "{record}");
        assert_eq!(record["status"], 200, "{record}");
    }
    let top = run.record(&start);
    assert_eq!(top["description"], "トップの説明");
    assert_eq!(top["links"], 16);
    assert_eq!(top["final_url"], start);

    // 書き方の違う /a へのリンクは、1回の取得にまとまります。
    for path in [
        "/", "/a", "/b", "/c", "/deep/1", "/slow/1", "/slow/2", "/moved", "/target", "/huge",
    ] {
        assert_eq!(site.hits(path), 1, "{path}: {:?}", site.paths());
    }
    // 深さ2より深いページと、別のホストへのリンクはたどりません。
    assert_eq!(site.hits("/deep/2"), 0);
    assert_eq!(other.hits("/"), 0);
    assert!(run.records.iter().all(|r| r["url"] != other_top));

    // robots.txtで禁止されたページは、一度もリクエストされません。
    assert_eq!(site.hits("/robots.txt"), 1);
    assert_eq!(site.hits("/private/secret"), 0);
    let secret = run.record(&site.url("/private/secret"));
    assert_eq!(secret["outcome"], "blocked");
    assert_eq!(secret["attempts"], 0);

    // 同じホストの中のリダイレクトはたどり、ループはエラーとして記録します。
    let moved = run.record(&site.url("/moved"));
    assert_eq!(moved["final_url"], site.url("/target"));
    assert!(run.records.iter().all(|r| r["url"] != site.url("/target")));
    let looped = run.record(&site.url("/loop"));
    assert_eq!(looped["outcome"], "error");
    assert!(
        looped["error"].as_str().unwrap().contains("ループ"),
        "{looped}"
    );
    assert_eq!(site.hits("/loop"), 1);

    // リンク先から別のホストへのリダイレクトは、リンクと同じく範囲外なので、行き先を記録するだけで
    // たどりません（開始URLのリダイレクトはたどります: tests/scope.rs）。
    let away = run.record(&site.url("/away"));
    assert_eq!(away["outcome"], "redirect");
    assert_eq!(away["status"], 302);
    assert_eq!(away["redirect"], other_page);
    assert!(run.records.iter().all(|r| r["url"] != other_page));
    assert_eq!(other.paths(), Vec::<String>::new());

    // HTML以外は解析せず、本文も読みません。
    let csv = run.record(&site.url("/data.csv"));
    assert_eq!(csv["outcome"], "file");
    assert_eq!(csv["content_type"], "text/csv");
    assert_eq!(csv["bytes"], 8);
    assert_eq!(csv["title"], Value::Null);
    assert_eq!(csv["links"], Value::Null);

    // 終わりのない本文は、上限で読むのをやめます。タイトルは先頭にあるので取れます。
    let huge = run.record(&site.url("/huge"));
    assert_eq!(huge["bytes"], 65536);
    assert_eq!(huge["truncated"], true);

    let missing = run.record(&site.url("/missing"));
    assert_eq!(missing["outcome"], "http_error");
    assert_eq!(missing["status"], 404);

    // 出力はこれで全部です（余計なURLも、2回出たURLもありません）。
    assert_eq!(run.records.len(), pages.len() + 5, "{}", run.stdout);

    // 同時に送る数の上限は、どの時点でも守られています。
    assert!(
        site.state.in_flight.max() <= 2,
        "{}",
        site.state.in_flight.max()
    );
    assert!(total.max() <= 4, "{}", total.max());

    // 標準エラーは端末ではないので、進み具合の表示はなく、要約だけが出ます。
    assert!(
        !run.stderr.contains('\r') && !run.stderr.contains('\x1b'),
        "{:?}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "件: ページ 9、ファイル 1、リダイレクト 1、HTTPエラー 1、失敗 1、robots.txtで除外 1"
        ),
        "{}",
        run.stderr
    );
}

/// 一時的な失敗のやり直し。待つ時間はやり直すたびに長くなり、Retry-Afterがあればそれに従います。
/// Retry-Afterはホスト全体を止めるので、2つのページは別のホストに置きます。
///
/// Retry-Afterは秒の単位なので、このテストは1秒より短くなりません。テストは名前の順に始まるので、
/// 最初に始まる名前にして、その1秒のあいだにほかのテストが進むようにしています。
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_retried_ever_later_and_a_429_after_its_retry_after() {
    let total = Arc::new(Gauge::default());
    let flaky_then = Box::new(html("3回目で成功", &[]));
    let flaky = Site::start(
        vec![(
            "/flaky",
            Route::FailFirst {
                times: 2,
                status: 503,
                retry_after: None,
                then: flaky_then,
            },
        )],
        Arc::clone(&total),
    )
    .await;
    let busy_then = Box::new(html("待ってから成功", &[]));
    let busy = Site::start(
        vec![(
            "/busy",
            Route::FailFirst {
                times: 1,
                status: 429,
                retry_after: Some(1),
                then: busy_then,
            },
        )],
        Arc::clone(&total),
    )
    .await;
    let run = scrape(&[
        &flaky.url("/flaky"),
        &busy.url("/busy"),
        "--backoff",
        "100ms",
        "--delay",
        "0ms",
    ])
    .await;
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);

    // 503が2回続いたページは、100ミリ秒以上、200ミリ秒以上と待つ時間を延ばしてやり直し、3回目で成功します。
    let record = run.record(&flaky.url("/flaky"));
    assert_eq!(record["title"], "3回目で成功");
    assert_eq!(record["attempts"], 3);
    let times = flaky.times("/flaky");
    assert_eq!(times.len(), 3);
    let (first_wait, second_wait) = (times[1] - times[0], times[2] - times[1]);
    assert!(first_wait >= Duration::from_millis(100), "{first_wait:?}");
    assert!(second_wait >= Duration::from_millis(200), "{second_wait:?}");
    assert!(second_wait > first_wait, "{first_wait:?} → {second_wait:?}");

    // 429のRetry-After: 1 は、バックオフ（100ミリ秒）より長いので、そちらに従います。
    let record = run.record(&busy.url("/busy"));
    assert_eq!(record["title"], "待ってから成功");
    assert_eq!(record["attempts"], 2);
    let times = busy.times("/busy");
    assert_eq!(times.len(), 2);
    assert!(
        times[1] - times[0] >= Duration::from_secs(1),
        "{:?}",
        times[1] - times[0]
    );
}

/// 全体とホストごとの同時リクエスト数の上限。テスト用サイトが、同時に処理していた数の最大を数えます
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_exceeds_the_total_and_per_host_limits() {
    let total = Arc::new(Gauge::default());
    let pages: Vec<String> = (0..12).map(|i| format!("/page/{i}")).collect();
    let routes = || {
        pages
            .iter()
            .map(|p| (p.as_str(), slow(p, Duration::from_millis(30))))
            .collect()
    };
    let a = Site::start(routes(), Arc::clone(&total)).await;
    let b = Site::start(routes(), Arc::clone(&total)).await;

    // 開始URLは`--input`のファイルから読みます（空行と#の行は読み飛ばします）。
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("urls.txt");
    let mut list = String::from("# 2つのホストに12ページずつ\n\n");
    for page in &pages {
        list += &format!("{}\n{}\n", a.url(page), b.url(page));
    }
    std::fs::write(&input, list).unwrap();
    let input = input.to_str().unwrap();
    let run = scrape(&[
        "--input",
        input,
        "--concurrency",
        "3",
        "--per-host",
        "2",
        "--delay",
        "0ms",
    ])
    .await;
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.records.len(), 24);
    assert!(run.records.iter().all(|r| r["outcome"] == "page"));

    assert!(
        a.state.in_flight.max() <= 2,
        "host a: {}",
        a.state.in_flight.max()
    );
    assert!(
        b.state.in_flight.max() <= 2,
        "host b: {}",
        b.state.in_flight.max()
    );
    assert!(total.max() <= 3, "total: {}", total.max());
    // 上限まで使い切っていること（1つずつ順に送っているのではないこと）も確かめます。
    assert_eq!(total.max(), 3, "total");
}

/// 同じホストへのリクエストは、`--delay`とrobots.txtのCrawl-delayの長いほうの間隔をあけて始めます
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_one_host_are_spaced_by_the_delay() {
    let total = Arc::new(Gauge::default());
    let pages: Vec<String> = (0..5).map(|i| format!("/page/{i}")).collect();
    let mut routes: Vec<(&str, Route)> = pages.iter().map(|p| (p.as_str(), html(p, &[]))).collect();
    let plain = Site::start(routes.clone(), Arc::clone(&total)).await;
    routes.push(("/robots.txt", robots("User-agent: *\nCrawl-delay: 0.06\n")));
    let polite = Site::start(routes, Arc::clone(&total)).await;

    let mut args: Vec<String> = pages
        .iter()
        .flat_map(|p| [plain.url(p), polite.url(p)])
        .collect();
    args.extend(["--per-host", "4", "--delay", "30ms"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = scrape(&args).await;
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);

    // 5つのページの間に4つの間隔があります。届く時刻のゆらぎを20ミリ秒まで許します。
    for (site, delay) in [(&plain, 30), (&polite, 60)] {
        let mut times: Vec<_> = pages.iter().flat_map(|p| site.times(p)).collect();
        times.sort();
        let span = times[4] - times[0];
        assert!(
            span >= Duration::from_millis(4 * delay - 20),
            "{delay}ms: {span:?}"
        );
    }
}

/// 取得できなかった開始URLがあれば終了コードは1。ほかのURLは最後まで取得します
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_url_does_not_stop_the_others_but_sets_the_exit_code() {
    let total = Arc::new(Gauge::default());
    let site = Site::start(vec![("/", html("動いているサイト", &[]))], total).await;
    // 一度待ち受けてすぐ閉じたポートには、接続できません。
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let refused = format!("http://{closed}/");
    let run = scrape(&[
        &refused,
        "not a url",
        &site.url("/"),
        &site.url("/missing"),
        "--retries",
        "2",
        "--backoff",
        "10ms",
    ])
    .await;

    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert_eq!(run.record(&site.url("/"))["title"], "動いているサイト");
    let error = run.record(&refused);
    assert_eq!(error["outcome"], "error");
    let message = error["error"].as_str().unwrap();
    assert!(
        message.contains("robots.txtを取得できません（3回試行）"),
        "{message}"
    );
    assert_eq!(run.record("not a url")["outcome"], "error");
    assert_eq!(run.record(&site.url("/missing"))["status"], 404);
    assert_eq!(
        run.stderr.matches("取得できなかった開始URL").count(),
        3,
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn usage_errors_exit_with_2_and_say_why() {
    let run = scrape(&[]).await;
    assert_eq!(run.status.code(), Some(2));
    assert!(run.stderr.contains("<URL>"), "{}", run.stderr);

    let run = scrape(&["http://127.0.0.1:9/", "--delay", "soon"]).await;
    assert_eq!(run.status.code(), Some(2));
    assert!(
        run.stderr.contains("時間として読めません: soon"),
        "{}",
        run.stderr
    );

    let run = scrape(&["--input", "/nonexistent/urls.txt"]).await;
    assert_eq!(run.status.code(), Some(2));
    assert!(
        run.stderr.contains("/nonexistent/urls.txt"),
        "{}",
        run.stderr
    );
}

/// Ctrl-C（SIGINT）で止めると、実行中のリクエストを捨ててすぐに終わり、書き終えた行はJSONとして読めます
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_promptly_and_leaves_valid_json_lines() {
    let total = Arc::new(Gauge::default());
    let slow_pages: Vec<String> = (0..10).map(|i| format!("/slow/{i}")).collect();
    let links: Vec<&str> = slow_pages.iter().map(String::as_str).collect();
    let mut routes = vec![("/", html("すぐ返るページ", &links))];
    // 終わるまでに10秒かかるページ。テストはその前に止めます
    routes.extend(
        slow_pages
            .iter()
            .map(|p| (p.as_str(), slow(p, Duration::from_secs(10)))),
    );
    let site = Site::start(routes, total).await;

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_scrape"))
        .args([&site.url("/"), "--depth", "1", "--delay", "0ms", "--output"])
        .arg(&output)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // 最初のページが書き出され、遅いページへのリクエストが届くまで待ちます（待つ時間にも上限があります）。
    let deadline = tokio::time::Instant::now() + RUN_LIMIT;
    while std::fs::read_to_string(&output)
        .unwrap_or_default()
        .lines()
        .count()
        < 1
        || !site.paths().iter().any(|p| p.starts_with("/slow/"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the crawl did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = child.id().unwrap() as libc::pid_t;
    // SAFETY: 自分で起動した子プロセスにシグナルを送るだけです。
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let interrupted = tokio::time::Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("scrape did not stop within 5 s after Ctrl-C")
        .unwrap();
    assert!(
        interrupted.elapsed() < Duration::from_secs(2),
        "{:?}",
        interrupted.elapsed()
    );
    assert_eq!(status.code(), Some(130));

    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(stderr.contains("Ctrl-Cで中断しました"), "{stderr}");

    let text = std::fs::read_to_string(&output).unwrap();
    assert!(text.ends_with('\n'));
    let records = parse_lines(&text);
    assert_eq!(records.len(), 1, "only the fast page finished: {text}");
    assert_eq!(records[0]["title"], "すぐ返るページ");
}

//! The rendered book in a real browser (Debian's Chromium, headless): Japanese search,
//! Run buttons, diagrams.
//!
//! Needs Chromium: `sudo apt-get install -y chromium fonts-noto-cjk` (`.ci/run` installs it).
//! Without it the test says so and passes, except under CI (`CI=true`), where it fails.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use headless_chrome::{Browser, LaunchOptions, Tab};

/// Query → the page that must be the first hit. Words, prefixes, parts of compounds, a phrase.
/// (Overview pages are indexed at a lower weight by `xtask::index_for_search`, so the page
/// that explains a topic comes before the pages that only list it.)
const QUERIES: &[(&str, &str)] = &[
    // words
    ("デッドロック", "ch19-04-deadlock.html"),
    ("ミューテックス", "ch19-01-sync.html"),
    ("所有権", "ch19-01-threads.html"),
    ("競合状態", "ch19-01-sync.html"),
    ("ランタイム", "ch19-03-async.html"),
    ("キャンセル", "ch19-03-async-tools.html"),
    ("バックプレッシャー", "ch19-04-patterns.html"),
    ("循環参照", "ch19-04-leaks.html"),
    // prefixes
    ("ミューテ", "ch19-01-sync.html"),
    ("デッドロ", "ch19-04-deadlock.html"),
    // compounds and their parts
    ("スコープ付きスレッド", "ch19-01-threads.html"),
    ("ワーカープール", "ch19-04-worker-pools.html"),
    // a part of a word (毒される, "is poisoned"), and a phrase
    ("毒", "ch19-01-sync.html"),
    ("\"再入可能\"", "ch19-01-sync.html"),
];

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROME") {
        return Some(PathBuf::from(path));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|candidate| candidate.is_file())
            })
        })
}

/// Serves `dir` on 127.0.0.1:0 from a background thread; returns the address.
fn serve(dir: &Path) -> SocketAddr {
    let dir = dir.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = xtask::router(&dir, Arc::new(AtomicU64::new(1)));
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the test server starts")
}

fn first_result(tab: &Tab) -> Option<String> {
    tab.wait_for_element_with_custom_timeout(".pagefind-ui__result-link", Duration::from_secs(10))
        .ok()
        .and_then(|link| link.get_attribute_value("href").ok().flatten())
}

/// Types `query` into the open search box (as an IME would commit it) and returns the
/// first result's link, or `None` when Pagefind reports no result. Waits at most 10 s.
fn search(tab: &Tab, query: &str) -> Option<String> {
    // Focus the box and select its text, then insert the query over the selection, as an
    // IME commits text. (Element clicks in the DevTools protocol cost ~1 s each.)
    let focused = tab
        .evaluate(
            "(() => { const i = document.querySelector('#pagefind-panel input');
                if (!i) return false; i.focus(); i.select(); return true; })()",
            false,
        )
        .unwrap()
        .value;
    assert_eq!(focused, Some(true.into()), "the search box is open");
    tab.send_character(query).unwrap();
    // The message names the term once the search for it has finished ("…件の…の検索結果",
    // or "…の検索に一致する情報はありませんでした"), not while it runs ("…を検索しています");
    // the result links are drawn a moment after the message.
    let term = query.trim_matches('"');
    let js = format!(
        "(() => {{ const m = document.querySelector('.pagefind-ui__message');
            if (!m || !m.textContent.includes({term:?}) || m.textContent.includes('検索しています')) return null;
            if (m.textContent.includes('ありませんでした')) return '';
            const first = document.querySelector('.pagefind-ui__result');
            const r = first && first.querySelector('.pagefind-ui__result-link');
            return r ? r.getAttribute('href') : null; }})()"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(value) = tab.evaluate(&js, false).unwrap().value
            && let Some(href) = value.as_str()
        {
            return (!href.is_empty()).then(|| href.to_string());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no search result for {query:?} within 10 s");
}

fn eval_bool(tab: &Tab, js: &str) -> bool {
    tab.evaluate(js, false)
        .unwrap()
        .value
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

#[test]
fn the_book_works_in_a_real_browser() {
    let Some(chrome) = chromium() else {
        let help = "Chromium was not found, so the browser test did not run.\n\
                    Install it with: sudo apt-get install -y chromium fonts-noto-cjk\n\
                    (or point CHROME=/path/to/chrome at another Chromium-based browser)";
        if std::env::var_os("CI").is_some() {
            panic!("{help}");
        }
        eprintln!("SKIPPED: {help}");
        return;
    };

    let out = tempfile::tempdir().unwrap();
    let html =
        xtask::build_book(&xtask::workspace_root(), Some(out.path())).expect("the book builds");
    let addr = serve(&html);
    let base = format!("http://{addr}/");

    let profile = tempfile::tempdir().unwrap();
    let args: Vec<&OsStr> = [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .iter()
    .map(OsStr::new)
    .collect();
    let browser = Browser::new(
        LaunchOptions::default_builder()
            .path(Some(chrome))
            .headless(true)
            .sandbox(false)
            .user_data_dir(Some(profile.path().to_path_buf()))
            .idle_browser_timeout(Duration::from_secs(120))
            .args(args)
            .build()
            .unwrap(),
    )
    .expect("Chromium starts");
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(20));

    // 1. Japanese search, opened from a `?search=` link as mdBook's own search allows.
    tab.navigate_to(&format!(
        "{base}ch19-00-intro.html?search=スコープ付きスレッド"
    ))
    .unwrap()
    .wait_until_navigated()
    .unwrap();
    let hit = first_result(&tab).expect("a ?search= link opens the results");
    assert!(hit.contains("ch19-01-threads.html"), "{hit}");

    // Every query finds its page first (typed into the same search box).
    let mut wrong = Vec::new();
    for (query, page) in QUERIES {
        let hit = search(&tab, query);
        eprintln!(
            "search {query:<16} → {}",
            hit.as_deref().unwrap_or("(nothing)")
        );
        if !hit
            .as_deref()
            .is_some_and(|h| h.trim_start_matches('/').starts_with(page))
        {
            wrong.push(format!("{query}: expected {page}, got {hit:?}"));
        }
    }
    assert!(wrong.is_empty(), "search results:\n{}", wrong.join("\n"));

    // A nonsense word finds nothing (and Pagefind says so).
    assert_eq!(search(&tab, "ヌポラゲピュ"), None);

    // On a chapter page: the search button and the `s` shortcut, a Run button on a
    // runnable listing, and diagrams rendered as SVG images that actually load.
    tab.navigate_to(&format!("{base}ch19-01-threads.html"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    tab.wait_for_element("#pagefind-toggle")
        .expect("the search button is in the menu bar");
    tab.press_key("s").unwrap();
    tab.wait_for_element("#pagefind-panel input").unwrap();
    let hit = search(&tab, "デッドロック").expect("typing a query shows results");
    assert!(hit.contains("ch19-04-deadlock.html"), "{hit}");
    assert!(
        eval_bool(
            &tab,
            "!!document.querySelector('pre.playground .play-button')"
        ),
        "runnable listings get a Run button"
    );
    assert!(
        eval_bool(
            &tab,
            "(() => { const imgs = [...document.querySelectorAll('.diagram img')];
              return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0
                && i.src.startsWith('data:image/svg+xml')); })()"
        ),
        "the thread timeline diagram is an SVG image"
    );

    // A listing that starts processes has no Run button (it cannot run on the Playground).
    tab.navigate_to(&format!("{base}ch19-02-processes.html"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    tab.wait_for_element("pre code").unwrap();
    assert!(
        eval_bool(
            &tab,
            "(() => { const pres = [...document.querySelectorAll('pre')]
                .filter(p => p.textContent.includes('current_exe'));
              return pres.length > 0 && pres.every(p => !p.querySelector('.play-button')); })()"
        ),
        "a listing that re-runs its own executable must not offer the Playground"
    );
}

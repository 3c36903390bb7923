//! The published book as a reader gets it: served under its sub-path (`site-url`, as GitHub
//! Pages serves a project), opened in a real browser (Debian's Chromium, headless).
//!
//! One build, one server and one browser are shared by all the tests in this file (each test
//! opens its own tab), so a failure in one does not hide the others.
//!
//! Needs Chromium: `apt-get install -y chromium fonts-noto-cjk` (`.ci/run` installs it).
//! Without it the browser tests say so and pass, except under CI (`CI=true`), where they fail;
//! the tests that only need the server run either way.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::{Emulation, Page};
use headless_chrome::types::PrintToPdfOptions;
use headless_chrome::{Browser, LaunchOptions, Tab};

/// What readers type: terms, compounds that ICU splits into words, prefixes typed so far, API
/// names, a part of a word (毒される), a phrase, a word typed in hiragana that the book writes
/// in katakana. Each with the form the book writes it in (what the pages must contain).
///
/// The expectations hold whatever page a topic moves to (pages are split and renamed as the
/// book is edited): every page that contains the whole term comes before every page that
/// contains only its parts, and when some page has the term in a heading, the first hit is
/// such a page (the one that explains it, not one that mentions it).
const QUERIES: &[(&str, &str)] = &[
    // terms
    ("デッドロック", "デッドロック"),
    ("ミューテックス", "ミューテックス"),
    ("ランタイム", "ランタイム"),
    ("循環参照", "循環参照"),
    ("バックプレッシャー", "バックプレッシャー"),
    ("背圧", "背圧"),
    // compounds that ICU splits
    ("共有メモリ", "共有メモリ"),
    ("競合状態", "競合状態"),
    ("スコープ付きスレッド", "スコープ付きスレッド"),
    ("ワーカープール", "ワーカープール"),
    ("データ競合", "データ競合"),
    // prefixes, as typed so far
    ("ミューテ", "ミューテ"),
    ("デッドロ", "デッドロ"),
    // API names
    ("Mutex", "mutex"),
    ("Condvar", "condvar"),
    ("rayon", "rayon"),
    ("スレッドプール", "スレッドプール"),
    // a part of a word, a phrase, hiragana for a katakana word
    ("毒", "毒"),
    ("\"再入可能\"", "再入可能"),
    ("でっどろっく", "デッドロック"),
];

/// Everything the tests share: the built book, the server and (when there is one) the browser.
struct Site {
    html: PathBuf,
    addr: SocketAddr,
    /// The book's sub-path, e.g. `/ch19/`.
    base: String,
    browser: Option<Browser>,
}

impl Site {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}{path}", self.addr, self.base)
    }
}

/// What the process must clean up at exit (statics are never dropped).
static CLEANUP: Mutex<(Vec<PathBuf>, Option<u32>)> = Mutex::new((Vec::new(), None));

extern "C" fn cleanup() {
    if let Ok(mut guard) = CLEANUP.lock() {
        if let Some(pid) = guard.1.take() {
            // Chromium outlives the test process otherwise.
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
        for dir in guard.0.drain(..) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

unsafe extern "C" {
    fn atexit(f: extern "C" fn()) -> i32;
}

static SITE: LazyLock<Site> = LazyLock::new(|| {
    // SAFETY: `cleanup` is a plain function that only kills a process and removes directories.
    unsafe { atexit(cleanup) };
    let root = xtask::workspace_root();
    let started = Instant::now();
    // The same build as tests/book.rs uses (cached while its inputs are unchanged).
    let html = xtask::build_book_for_tests(&root).expect("the book builds");
    eprintln!("the book is ready after {:.1?}", started.elapsed());
    let base = xtask::site_path(&root).unwrap();
    assert_ne!(
        base, "/",
        "book.toml sets site-url to the sub-path the book is published under"
    );
    let addr = serve(&html, &base, None);
    let browser = chromium().map(|chrome| {
        let profile = tempfile::tempdir().unwrap().keep();
        CLEANUP.lock().unwrap().0.push(profile.clone());
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
                .user_data_dir(Some(profile))
                .idle_browser_timeout(Duration::from_secs(300))
                .args(args)
                .build()
                .unwrap(),
        )
        .expect("Chromium starts");
        CLEANUP.lock().unwrap().1 = browser.get_process_id();
        browser
    });
    Site {
        html,
        addr,
        base,
        browser,
    }
});

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

/// A new tab of the shared browser, or `None` (and a note) when there is no Chromium.
fn tab() -> Option<Arc<Tab>> {
    let Some(browser) = &SITE.browser else {
        let help = "Chromium was not found, so the browser test did not run.\n\
                    Install it with: apt-get install -y chromium fonts-noto-cjk\n\
                    (or point CHROME=/path/to/chrome at another Chromium-based browser)";
        if std::env::var_os("CI").is_some() {
            panic!("{help}");
        }
        eprintln!("SKIPPED: {help}");
        return None;
    };
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(20));
    Some(tab)
}

fn open(tab: &Tab, url: &str) {
    tab.navigate_to(url)
        .unwrap()
        .wait_until_navigated()
        .unwrap();
}

/// Serves `dir` under `base` on 127.0.0.1:0 from a background thread; returns the address.
fn serve(dir: &Path, base: &str, live_reload: Option<Arc<AtomicU64>>) -> SocketAddr {
    let app = xtask::router(dir, base, live_reload);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the test server starts")
}

/// A plain HTTP GET: (status, headers and body as text).
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

/// Evaluates the expression `js` in the page (awaiting it if it is a promise) and returns
/// its value, passed as JSON (DevTools returns arrays and objects by reference otherwise).
fn eval(tab: &Tab, js: &str) -> String {
    let wrapped = format!("(async () => JSON.stringify(await ({js})))()");
    let json = tab
        .evaluate(&wrapped, true)
        .unwrap_or_else(|e| panic!("{e}: {js}"))
        .value;
    json.and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "null".to_owned())
}

/// Evaluates `js`, an array of strings (or `null`), in the page.
fn eval_list(tab: &Tab, js: &str) -> Option<Vec<String>> {
    let joined = format!(
        "(async () => {{ const v = await ({js}); return v === null ? null : v.join('\\u0001'); }})()"
    );
    let value = tab
        .evaluate(&joined, true)
        .unwrap_or_else(|e| panic!("{e}: {js}"))
        .value?;
    let joined = value.as_str()?;
    Some(if joined.is_empty() {
        Vec::new()
    } else {
        joined.split('\u{1}').map(str::to_owned).collect()
    })
}

/// The chapter pages in reading order (as the sidebar of the built book lists them).
fn chapters() -> Vec<String> {
    let toc = std::fs::read_to_string(SITE.html.join("toc.html")).unwrap();
    let doc = scraper::Html::parse_document(&toc);
    let link = scraper::Selector::parse("a[href$='.html']").unwrap();
    let mut seen = BTreeSet::new();
    doc.select(&link)
        .filter_map(|a| a.value().attr("href"))
        .filter(|href| href.starts_with("ch19-") && seen.insert(href.to_string()))
        .map(str::to_owned)
        .collect()
}

/// Types `query` into the open search box (as an IME commits it) and returns the result
/// links in order (empty when nothing is found) once the search has finished. Waits ≤ 10 s.
fn search(tab: &Tab, query: &str) -> Vec<String> {
    // Focus the box and select its text, then insert the query over the selection.
    // (Element clicks in the DevTools protocol cost ~1 s each.)
    let focused = eval(
        tab,
        "(() => { const i = document.querySelector('#pagefind-panel input');
            if (!i) return false; i.focus(); i.select(); return true; })()",
    );
    assert_eq!(focused, "true", "the search box is open");
    tab.send_character(query).unwrap();
    results(tab, query)
}

/// The page links of the results for `query`, once its search has finished.
fn results(tab: &Tab, query: &str) -> Vec<String> {
    let term = query.trim();
    let js = format!(
        "(() => {{ const m = document.querySelector('.pagefind-ui__message');
            if (!m || !m.textContent.includes({term:?}) || m.textContent.includes('検索しています')) return null;
            return [...document.querySelectorAll('.pagefind-ui__result > .pagefind-ui__result-inner > .pagefind-ui__result-title a')]
                .map(a => a.getAttribute('href')); }})()"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(links) = eval_list(tab, &js) {
            return links;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    let state = eval(
        tab,
        "(() => { const m = document.querySelector('.pagefind-ui__message');
            const i = document.querySelector('#pagefind-panel input');
            return [m ? m.textContent : 'no message', i ? i.value : 'no input']; })()",
    );
    panic!("no search result for {query:?} within 10 s (message, input: {state})");
}

/// The stylesheets of the open page that did not load (theme stylesheets that are off are
/// not loaded by design).
const UNLOADED_STYLESHEETS: &str = "[...document.querySelectorAll('link[rel=stylesheet]')]
    .filter(l => !l.disabled && !(l.sheet && l.sheet.cssRules.length > 0)).map(l => l.href)";

/// The searchable text of a chapter page (lower case; code blocks are not indexed).
struct PageText {
    text: String,
    headings: String,
}

/// Each chapter page's text outside code blocks, and its headings (h1–h3).
fn page_texts() -> std::collections::BTreeMap<String, PageText> {
    let main = scraper::Selector::parse("main").unwrap();
    let headings = scraper::Selector::parse("main h1, main h2, main h3").unwrap();
    chapters()
        .into_iter()
        .map(|page| {
            let html = std::fs::read_to_string(SITE.html.join(&page)).unwrap();
            let doc = scraper::Html::parse_document(&html);
            let mut text = String::new();
            if let Some(main) = doc.select(&main).next() {
                for node in main.descendants() {
                    let in_code = node
                        .ancestors()
                        .any(|a| a.value().as_element().is_some_and(|e| e.name() == "pre"));
                    if let (Some(t), false) = (node.value().as_text(), in_code) {
                        text.push_str(t);
                    }
                    // Pagefind indexes the alternative text of images (the diagrams) too.
                    if let Some(alt) = node.value().as_element().and_then(|e| e.attr("alt")) {
                        text.push_str(alt);
                    }
                }
            }
            let headings: String = doc.select(&headings).flat_map(|h| h.text()).collect();
            let text = PageText {
                text: text.to_lowercase(),
                headings: headings.to_lowercase(),
            };
            (page, text)
        })
        .collect()
}

/// The first chapter page (in reading order) whose HTML contains `needle`: the tests look
/// pages up by what they show, since pages are split and renamed as the book is edited.
fn page_with(needle: &str) -> Option<String> {
    chapters().into_iter().find(|page| {
        std::fs::read_to_string(SITE.html.join(page)).is_ok_and(|html| html.contains(needle))
    })
}

/// `/ch19/ch19-01-sync.html#x` → `ch19-01-sync.html`
fn page_of(link: &str) -> &str {
    let path = link.split('#').next().unwrap_or(link);
    path.rsplit('/').next().unwrap_or(path)
}

#[test]
fn search_ranks_the_page_with_the_whole_term_first() {
    let Some(tab) = tab() else { return };
    open(&tab, &SITE.url(&chapters()[1]));
    tab.wait_for_element("#pagefind-toggle")
        .expect("the search button is in the menu bar");
    tab.press_key("s").unwrap();
    tab.wait_for_element("#pagefind-panel input").unwrap();

    let pages = page_texts();
    let mut wrong = Vec::new();
    for &(query, term) in QUERIES {
        let hits = search(&tab, query);
        let hit_pages: Vec<&str> = hits.iter().map(|h| page_of(h)).collect();
        eprintln!(
            "search {query:<14} → {}",
            hit_pages
                .iter()
                .take(3)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        );
        let has = |page: &str| pages.get(page).is_some_and(|p| p.text.contains(term));
        let in_heading = |page: &str| pages.get(page).is_some_and(|p| p.headings.contains(term));
        // Every page with the whole term before every page without it.
        if let Some(first_without) = hit_pages.iter().position(|p| !has(p))
            && let Some(later) = hit_pages[first_without..].iter().find(|p| has(p))
        {
            wrong.push(format!(
                "{query}: {later} contains {term} but comes after {}, which does not: {hit_pages:?}",
                hit_pages[first_without]
            ));
        }
        if hit_pages.is_empty() || !has(hit_pages[0]) {
            wrong.push(format!(
                "{query}: the first hit does not contain {term}: {hit_pages:?}"
            ));
        }
        // A page that explains the term (has it in a heading) first, when there is one.
        if pages.keys().any(|p| in_heading(p)) && !hit_pages.first().is_some_and(|p| in_heading(p))
        {
            let explaining: Vec<_> = pages.keys().filter(|p| in_heading(p)).collect();
            wrong.push(format!(
                "{query}: the first hit has no heading with {term} (pages that do: {explaining:?}): {hit_pages:?}"
            ));
        }
        let outside: Vec<_> = hits.iter().filter(|h| !h.starts_with(&SITE.base)).collect();
        if !outside.is_empty() {
            wrong.push(format!("{query}: links outside {}: {outside:?}", SITE.base));
        }
    }
    // A nonsense word finds nothing.
    if !search(&tab, "ヌポラゲピュ").is_empty() {
        wrong.push("ヌポラゲピュ found something".into());
    }
    assert!(wrong.is_empty(), "search results:\n{}", wrong.join("\n"));
}

#[test]
fn search_shows_each_excerpt_once_and_its_links_open() {
    let Some(tab) = tab() else { return };
    // Opened from a `?search=` link, as mdBook's own search allows.
    open(
        &tab,
        &SITE.url(&format!("{}?search=デッドロック", chapters()[0])),
    );
    let hits = results(&tab, "デッドロック");
    assert!(!hits.is_empty(), "a ?search= link opens the results");
    for query in ["Mutex", "チャネル", "キャンセル"] {
        search(&tab, query);
        let repeated = eval(
            &tab,
            "(() => { const seen = new Set(), twice = [];
                for (const r of document.querySelectorAll('.pagefind-ui__result')) {
                    seen.clear();
                    for (const e of r.querySelectorAll('.pagefind-ui__result-excerpt')) {
                        if (seen.has(e.textContent)) twice.push(e.textContent);
                        seen.add(e.textContent);
                    }
                }
                return twice; })()",
        );
        assert_eq!(repeated, "[]", "{query}: an excerpt is shown twice");
    }
    // Every link of the last results (pages and headings) resolves under the sub-path.
    let links = eval_list(
        &tab,
        "[...document.querySelectorAll('.pagefind-ui__result-link')].map(a => a.getAttribute('href'))",
    )
    .unwrap_or_default();
    assert!(!links.is_empty());
    for link in &links {
        let (status, _) = http_get(SITE.addr, link.split('#').next().unwrap());
        assert_eq!(status, 200, "{link}");
    }
    // Following a result lands on the page, at the heading.
    let target = links.iter().find(|l| l.contains('#')).unwrap_or(&links[0]);
    open(&tab, &format!("http://{}{target}", SITE.addr));
    assert!(
        tab.get_url().ends_with(target.as_str()),
        "{}",
        tab.get_url()
    );
}

#[test]
fn pages_and_assets_resolve_under_the_sub_path() {
    // Every file the pages refer to is served under the sub-path.
    let refs = scraper::Selector::parse("[href], [src]").unwrap();
    let mut checked = BTreeSet::new();
    let diagrams = page_with("class=\"diagram\"").expect("a page with a diagram");
    for page in ["index.html", &diagrams, "print.html"] {
        let (status, body) = http_get(SITE.addr, &format!("{}{page}", SITE.base));
        assert_eq!(status, 200, "{page}");
        let doc = scraper::Html::parse_document(&body);
        for element in doc.select(&refs) {
            let value = element.value();
            let target = value.attr("href").or(value.attr("src")).unwrap_or_default();
            let target = target.split(['#', '?']).next().unwrap_or_default();
            if target.is_empty() || target.contains(':') || !checked.insert(target.to_string()) {
                continue; // an anchor, external, a data: URL, or seen
            }
            let (status, _) = http_get(SITE.addr, &format!("{}{target}", SITE.base));
            assert_eq!(status, 200, "{page} refers to {target}");
        }
    }
    assert!(checked.len() > 20, "{checked:?}");
    // The root and the sub-path without its slash lead to the book.
    for path in ["/", SITE.base.trim_end_matches('/')] {
        let (status, head) = http_get(SITE.addr, path);
        assert!(
            (300..400).contains(&status) && head.contains(&format!("location: {}", SITE.base)),
            "{path}: {head}"
        );
    }

    let Some(tab) = tab() else { return };
    open(&tab, &SITE.url(&diagrams));
    tab.wait_for_element("#pagefind-toggle").unwrap();
    assert_eq!(
        eval(&tab, UNLOADED_STYLESHEETS),
        "[]",
        "every stylesheet of a page loads"
    );
}

#[test]
fn the_404_page_works_at_any_depth() {
    let (status, body) = http_get(SITE.addr, &format!("{}no/such/page.html", SITE.base));
    assert_eq!(status, 404);
    assert!(
        body.contains(&format!("<base href=\"{}\">", SITE.base)),
        "404.html takes its assets from the book's sub-path (book.toml site-url)"
    );

    let Some(tab) = tab() else { return };
    open(&tab, &SITE.url("no/such/page.html"));
    tab.wait_for_element("#pagefind-toggle")
        .expect("the 404 page loads the book's scripts (search button)");
    assert_eq!(
        eval(&tab, UNLOADED_STYLESHEETS),
        "[]",
        "the 404 page has the book's styles"
    );
    let link = eval(
        &tab,
        &format!(
            "new URL(document.querySelector('#mdbook-sidebar a[href$=\"{}\"]').href).pathname",
            chapters()[1]
        ),
    );
    assert_eq!(
        link,
        format!("\"{}{}\"", SITE.base, chapters()[1]),
        "the 404 page's links lead into the book"
    );
}

#[test]
fn run_buttons_and_diagrams() {
    let Some(tab) = tab() else { return };
    // mdBook's book.js asks play.rust-lang.org for its crate list before it shows a Run
    // button, and sends the code there when it is pressed. The test has no network: the page
    // gets the committed crate list instead, and what a Run button would send is recorded.
    let crates: Vec<String> =
        std::fs::read_to_string(xtask::workspace_root().join("xtask/data/playground-crates.txt"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| l.split_whitespace().next())
            .map(|id| format!("{{\"id\":\"{id}\"}}"))
            .collect();
    let fake_playground = format!(
        "(() => {{ const real = window.fetch; window.__sent = [];
            window.fetch = (url, options) => {{
                if (String(url).startsWith('https://play.rust-lang.org/meta/crates'))
                    return Promise.resolve(new Response('{{\"crates\":[{}]}}'));
                if (String(url).startsWith('https://play.rust-lang.org/evaluate.json')) {{
                    window.__sent.push(JSON.parse(options.body));
                    return Promise.resolve(new Response('{{\"result\":\"ok\"}}'));
                }}
                return real(url, options);
            }}; }})();",
        crates.join(",")
    );
    tab.call_method(Page::AddScriptToEvaluateOnNewDocument {
        source: fake_playground,
        world_name: None,
        include_command_line_api: None,
        run_immediately: None,
    })
    .unwrap();
    let runnable = page_with("<pre class=\"playground\">").expect("a page with a runnable listing");
    open(&tab, &SITE.url(&runnable));
    tab.wait_for_element("pre code").unwrap();
    // Every runnable listing shows its button once the crate list has arrived; `no_run` ones not.
    let deadline = Instant::now() + Duration::from_secs(10);
    let buttons = loop {
        let state = eval_list(
            &tab,
            "[...document.querySelectorAll('pre.playground')].map(p => {
                const b = p.querySelector('.play-button');
                const noRun = p.querySelector('code').classList.contains('no_run');
                return (noRun ? 'no_run ' : 'run ') + (b && !b.hidden && !b.classList.contains('hidden') ? 'shown' : 'hidden'); })",
        )
        .unwrap_or_default();
        if state.iter().any(|s| s == "run shown") || Instant::now() > deadline {
            break state;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        !buttons.is_empty()
            && buttons
                .iter()
                .all(|s| s == "run shown" || s == "no_run hidden"),
        "Run buttons (listing kind, button): {buttons:?}"
    );
    // Pressing one sends the whole program, hidden lines included, as edition 2024.
    eval(
        &tab,
        "document.querySelector('pre.playground .play-button:not(.hidden)').click()",
    );
    let sent = eval(&tab, "window.__sent");
    assert!(
        sent.contains("fn main") && sent.contains("\"edition\":\"2024\""),
        "what the Run button sends: {sent}"
    );
    let diagrams = page_with("class=\"diagram\"").expect("a page with a diagram");
    open(&tab, &SITE.url(&diagrams));
    tab.wait_for_element(".diagram img").unwrap();
    assert_eq!(
        eval(
            &tab,
            "(() => { const imgs = [...document.querySelectorAll('.diagram img')];
              return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0
                && i.src.startsWith('data:image/svg+xml')); })()"
        ),
        "true",
        "diagrams are SVG images that load"
    );
    // Which listings may have a Run button at all (crates, processes) is checked without a
    // browser: xtask/tests/playground.rs.
}

#[test]
fn print_view_has_every_page_in_order_and_prints_to_pdf() {
    let chapters = chapters();
    // The top headings of each chapter, in reading order, as print.html must show them.
    let h1 = scraper::Selector::parse("main h1").unwrap();
    let expected: Vec<String> = chapters
        .iter()
        .flat_map(|page| {
            let text = std::fs::read_to_string(SITE.html.join(page)).unwrap();
            let doc = scraper::Html::parse_document(&text);
            let headings: Vec<String> = doc.select(&h1).map(|h| h.text().collect()).collect();
            assert!(!headings.is_empty(), "{page} has no heading");
            headings
        })
        .collect();
    assert!(expected.len() >= 20, "{expected:?}");

    let Some(tab) = tab() else { return };
    // print.html is the whole book: give it time to load on a busy machine.
    tab.set_default_timeout(Duration::from_secs(60));
    // print.html opens the print dialog when loaded; the test prints through DevTools instead.
    tab.call_method(Page::AddScriptToEvaluateOnNewDocument {
        source: "window.print = () => {};".into(),
        world_name: None,
        include_command_line_api: None,
        run_immediately: None,
    })
    .unwrap();
    open(&tab, &SITE.url("print.html"));
    tab.wait_for_element("main h1").unwrap();
    let shown = eval_list(
        &tab,
        "[...document.querySelectorAll('main h1')].map(h => h.textContent)",
    )
    .unwrap_or_default();
    assert_eq!(
        shown, expected,
        "print.html has every page, in reading order"
    );
    assert_eq!(
        eval(
            &tab,
            "(() => { const imgs = [...document.querySelectorAll('.diagram img')];
              return imgs.length >= 2 && imgs.every(i => i.complete && i.naturalWidth > 0); })()"
        ),
        "true",
        "the diagrams render in the print view"
    );

    tab.call_method(Emulation::SetEmulatedMedia {
        media: Some("print".into()),
        features: None,
    })
    .unwrap();
    let hidden = eval(
        &tab,
        "['#pagefind-toggle', '#mdbook-sidebar', '#mdbook-menu-bar', '.nav-chapters']
            .filter(s => { const e = document.querySelector(s); return e && getComputedStyle(e).display !== 'none'
                && e.getBoundingClientRect().height > 0; })",
    );
    assert_eq!(hidden, "[]", "search and navigation are hidden in print");
    let cut = eval(
        &tab,
        "[...document.querySelectorAll('main pre')]
            .filter(p => p.scrollWidth > p.clientWidth + 1)
            .map(p => p.textContent.split('\\n').find(l => l.length > 60) || p.textContent.slice(0, 60))",
    );
    assert_eq!(cut, "[]", "code blocks wrap in print");

    // Printing all of print.html takes ~20 s (it lays out the whole book whatever the page
    // range), so the test prints one chapter; with BOOK_PDF=path/book.pdf it prints the whole
    // book there (A4) and reports the page count.
    let whole = std::env::var_os("BOOK_PDF")
        .map(PathBuf::from)
        .map(|path| xtask::workspace_root().join(path)); // relative to the repository
    if whole.is_none() {
        open(&tab, &SITE.url(&chapters[0]));
    }
    let started = Instant::now();
    let pdf = tab
        .print_to_pdf(Some(PrintToPdfOptions {
            print_background: Some(false),
            paper_width: Some(8.27),
            paper_height: Some(11.69),
            ..Default::default()
        }))
        .expect("Chromium prints the book to PDF");
    let pages = pdf
        .windows(b"/Type /Page".len() + 1)
        .filter(|w| w.starts_with(b"/Type /Page") && w[w.len() - 1] != b's')
        .count();
    eprintln!(
        "{} → PDF: {pages} A4 pages, {} KiB, {:.1?}",
        if whole.is_some() {
            "print.html"
        } else {
            chapters[0].as_str()
        },
        pdf.len() / 1024,
        started.elapsed()
    );
    assert!(pages >= 1, "a PDF with pages");
    if let Some(path) = whole {
        std::fs::write(&path, &pdf).unwrap();
        assert!(pages >= chapters.len(), "{pages} PDF pages");
    }
}

#[test]
fn link_previews_and_no_reload_script_in_the_published_book() {
    let mut missing = Vec::new();
    for page in chapters() {
        let text = std::fs::read_to_string(SITE.html.join(&page)).unwrap();
        let doc = scraper::Html::parse_document(&text);
        let meta = |selector: &str| {
            doc.select(&scraper::Selector::parse(selector).unwrap())
                .next()
                .and_then(|m| m.value().attr("content"))
                .unwrap_or_default()
                .to_owned()
        };
        let description = meta("meta[name=description]");
        if description.chars().count() < 5
            || meta("meta[property='og:description']") != description
            || meta("meta[property='og:title']").is_empty()
        {
            missing.push(format!("{page}: description {description:?}"));
        }
    }
    assert!(missing.is_empty(), "link previews:\n{}", missing.join("\n"));

    // The published book has no live-reload script; `cargo xtask serve` adds it to each page.
    for file in xtask::files_with_extension(&SITE.html, "html").unwrap() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("__xtask"), "{}", file.display());
    }
    assert!(!SITE.html.join("theme/reload.js").exists());
    let live = serve(&SITE.html, &SITE.base, Some(Arc::new(AtomicU64::new(1))));
    let (status, body) = http_get(live, &format!("{}{}", SITE.base, chapters()[0]));
    assert_eq!(status, 200);
    assert!(body.contains("<script src=\"/__xtask/reload.js\"></script></body>"));
    let (status, script) = http_get(live, "/__xtask/reload.js");
    assert_eq!(status, 200);
    assert!(script.contains("/__xtask/generation"));
    assert_eq!(http_get(live, "/__xtask/generation").0, 200);
}

//! The published book as a reader gets it: served under its sub-path (`site-url`, as GitHub
//! Pages serves a project), opened in a real browser (Debian's Chromium, headless).
//!
//! One build, one server and one browser are shared by all the tests in this file (each test
//! has a tab of its own while it runs), so a failure in one does not hide the others.
//!
//! Needs Chromium: `apt-get install -y chromium fonts-noto-cjk` (`.ci/run` installs it).
//! Without it the browser tests say so and pass, except under CI (`CI=true`), where they fail;
//! the tests that only need the server run either way.

mod cdp;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, LazyLock, Mutex, Once};
use std::time::{Duration, Instant};

use cdp::{Browser, Tab};
use serde_json::json;

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

/// What the tests share: the built book and the server.
struct Site {
    html: PathBuf,
    addr: SocketAddr,
    /// The book's sub-path, e.g. `/ch19/`.
    base: String,
}

impl Site {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}{path}", self.addr, self.base)
    }
}

/// What the process must clean up at exit (statics are never dropped): Chromium, by its
/// process id and profile directory.
static CLEANUP: Mutex<Option<(u32, PathBuf)>> = Mutex::new(None);

extern "C" fn cleanup() {
    if let Ok(mut guard) = CLEANUP.lock()
        && let Some((pid, profile)) = guard.take()
    {
        // Chromium outlives the test process otherwise.
        cdp::stop(pid, &profile);
    }
}

/// Registers `cleanup` to run at exit (once).
fn clean_up_at_exit() {
    static REGISTERED: Once = Once::new();
    // SAFETY: `cleanup` is a plain function that only kills processes and removes directories.
    REGISTERED.call_once(|| unsafe {
        libc::atexit(cleanup);
    });
}

static SITE: LazyLock<Site> = LazyLock::new(|| {
    clean_up_at_exit();
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
    Site { html, addr, base }
});

/// Chromium's flags besides those `cdp::Browser::launch` adds (headless, the DevTools port, a
/// new profile): Puppeteer's defaults for automation, no sandbox (as root Chromium starts only
/// without one), no GPU, and no network of its own (updates, sync, QUIC).
const CHROMIUM_FLAGS: &[&str] = &[
    "--disable-background-networking",
    "--enable-features=NetworkService,NetworkServiceInProcess",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-breakpad",
    "--disable-client-side-phishing-detection",
    "--disable-component-extensions-with-background-pages",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--disable-features=TranslateUI,BlinkGenPropertyTrees",
    "--disable-hang-monitor",
    "--disable-ipc-flooding-protection",
    "--disable-popup-blocking",
    "--disable-prompt-on-repost",
    "--disable-renderer-backgrounding",
    "--disable-sync",
    "--force-color-profile=srgb",
    "--metrics-recording-only",
    "--no-first-run",
    "--enable-automation",
    "--password-store=basic",
    "--use-mock-keychain",
    "--ignore-certificate-errors",
    "--disable-gpu",
    "--no-sandbox",
    "--disable-setuid-sandbox",
    "--disable-quic",
    "--disable-component-update",
];

/// The shared browser (`None` when there is no Chromium), started by the first test that
/// asks for a tab: the tests that need only the server do not wait for it.
static BROWSER: LazyLock<Option<Browser>> = LazyLock::new(|| {
    clean_up_at_exit();
    let chrome = chromium()?;
    let browser = Browser::launch(&chrome, CHROMIUM_FLAGS).expect("Chromium starts");
    *CLEANUP.lock().unwrap() = Some((browser.pid(), browser.profile().to_owned()));
    // libtest runs one test per CPU at a time. The first test gets the blank tab Chromium
    // starts with (listed a moment later); a second tab is opened meanwhile for the next.
    TABS.lock().unwrap().opening += 1;
    let second = browser.clone();
    std::thread::spawn(move || {
        let tab = second.new_tab();
        let mut tabs = TABS.lock().unwrap();
        tabs.opening -= 1;
        if let Ok(tab) = tab {
            tabs.add(Arc::new(tab));
        }
        TABS_CHANGED.notify_all();
    });
    let deadline = Instant::now() + Duration::from_secs(3);
    let initial = loop {
        let first = browser.tab_ids().unwrap().into_iter().next();
        if first.is_some() || Instant::now() > deadline {
            break first;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if let Some(tab) = initial.and_then(|id| browser.attach(&id).ok()) {
        TABS.lock().unwrap().add(Arc::new(tab));
        TABS_CHANGED.notify_all();
    }
    Some(browser)
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

/// The tabs of the shared browser that no test is using: a new tab costs ~0.5 s (and its
/// first page load more, as Chromium starts a renderer for it), so a test that passes leaves
/// its tab for the next.
struct Tabs {
    idle: Vec<Arc<Tab>>,
    /// The tabs ever added to `idle` (their target ids).
    added: Vec<String>,
    /// How many tabs are being opened for `idle`.
    opening: usize,
}

impl Tabs {
    /// Adds a tab to `idle` unless it was added before (the blank tab Chromium starts with is
    /// taken to be the first tab listed, which may be the one opened meanwhile).
    fn add(&mut self, tab: Arc<Tab>) {
        if !self.added.iter().any(|id| id == tab.target_id()) {
            self.added.push(tab.target_id().to_owned());
            self.idle.push(tab);
        }
    }
}

static TABS: Mutex<Tabs> = Mutex::new(Tabs {
    idle: Vec::new(),
    added: Vec::new(),
    opening: 0,
});
/// Notified when a tab becomes idle, or when one is no longer being opened.
static TABS_CHANGED: Condvar = Condvar::new();

/// A tab of the shared browser for one test. When the test passes, the tab goes back to the
/// idle ones (the next test opens a page in it, which replaces the document); when it fails,
/// the tab is closed. A test that changes a tab beyond its page (a script for new documents,
/// emulated media) undoes that before it ends.
struct TestTab(Arc<Tab>);

impl Deref for TestTab {
    type Target = Tab;
    fn deref(&self) -> &Tab {
        &self.0
    }
}

impl Drop for TestTab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.close();
        } else {
            TABS.lock().unwrap().idle.push(Arc::clone(&self.0));
            TABS_CHANGED.notify_all();
        }
    }
}

/// A tab of the shared browser, or `None` (and a note) when there is no Chromium.
fn tab() -> Option<TestTab> {
    let Some(browser) = &*BROWSER else {
        let help = "Chromium was not found, so the browser test did not run.\n\
                    Install it with: apt-get install -y chromium fonts-noto-cjk\n\
                    (or point CHROME=/path/to/chrome at another Chromium-based browser)";
        if std::env::var_os("CI").is_some() {
            panic!("{help}");
        }
        eprintln!("SKIPPED: {help}");
        return None;
    };
    // An idle tab, or the one being opened (≤ 20 s), or else a new one.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut tabs = TABS.lock().unwrap();
    while tabs.idle.is_empty() && tabs.opening > 0 && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        tabs = TABS_CHANGED.wait_timeout(tabs, left).unwrap().0;
    }
    let idle = tabs.idle.pop();
    drop(tabs);
    Some(TestTab(
        idle.unwrap_or_else(|| Arc::new(browser.new_tab().unwrap())),
    ))
}

/// Opens `url` in `tab` and returns once the page has loaded (its `load` event), ≤ 20 s.
/// (It does not wait for the network to be idle on top of that.)
fn open(tab: &Tab, url: &str) {
    open_within(tab, url, Duration::from_secs(20));
}

/// `open` with another time limit.
fn open_within(tab: &Tab, url: &str, timeout: Duration) {
    tab.navigate(url, timeout)
        .unwrap_or_else(|e| panic!("{e:#}"));
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
    let evaluated = tab
        .evaluate(&wrapped)
        .unwrap_or_else(|e| panic!("{e}: {js}"));
    evaluated["result"]["value"]
        .as_str()
        .map_or_else(|| "null".to_owned(), str::to_owned)
}

/// Evaluates `js`, an array of strings, in the page.
fn eval_list(tab: &Tab, js: &str) -> Vec<String> {
    let json = eval(tab, js);
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {js} = {json}"))
}

/// JavaScript: `until(f)` resolves to what `f` returns (awaited) once that is truthy, or to
/// `null` after 10 s. It calls `f` whenever the document changes, and every 50 ms for what
/// does not show in the document. Waiting inside the page takes one DevTools round trip, not
/// one for each look.
const UNTIL: &str = "((f) => new Promise((resolve) => {
    let finished = false;
    const done = (v) => {
        if (finished) return;
        finished = true;
        clearTimeout(timeout);
        clearInterval(poll);
        observer.disconnect();
        resolve(v);
    };
    const check = async () => { const v = await f(); if (v) done(v); };
    const timeout = setTimeout(() => done(null), 10000);
    const poll = setInterval(check, 50);
    const observer = new MutationObserver(check);
    observer.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
    check();
}))";

/// Waits in the page until the expression `js` is truthy and returns its value as JSON, or
/// `None` after 10 s.
fn wait_for(tab: &Tab, js: &str) -> Option<String> {
    let json = eval(tab, &format!("{UNTIL}(async () => ({js}))"));
    (json != "null").then_some(json)
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

/// Opens the search panel of the open page with the S key, as a reader does. The key works
/// once the page's search script has loaded Pagefind, so it is pressed until the panel opens
/// (≤ 10 s), 0.1 s apart: Chromium runs input before loading, and a key every 20 ms kept the
/// script from ever loading Pagefind (12 runs in 20 of this test alone failed so).
fn open_search(tab: &Tab) {
    wait_for(tab, "document.querySelector('#pagefind-toggle')")
        .expect("the search button is in the menu bar");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tab.press_key('s').unwrap();
        if eval(tab, "!document.querySelector('#pagefind-panel').hidden") == "true" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the S key opens the search panel within 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// JavaScript: `results(term)` is the page links of the results in order (empty when nothing
/// was found) once the search for `term` has finished, else `null`.
const RESULTS: &str = "((term) => {
    const m = document.querySelector('.pagefind-ui__message');
    if (!m || !m.textContent.startsWith('「' + term + '」') || m.textContent.includes('検索しています'))
        return null;
    return [...document.querySelectorAll('.pagefind-ui__result > .pagefind-ui__result-inner > .pagefind-ui__result-title a')]
        .map(a => a.getAttribute('href')); })";

/// The message and the text in the search box, for a search that did not finish.
const SEARCH_STATE: &str = "(() => { const m = document.querySelector('.pagefind-ui__message');
    const i = document.querySelector('#pagefind-panel input');
    return [m ? m.textContent : 'no message', i ? i.value : 'no input']; })()";

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
    tab.insert_text(query).unwrap();
    results(tab, query)
}

/// The page links of the results for `query`, once its search has finished (≤ 10 s).
fn results(tab: &Tab, query: &str) -> Vec<String> {
    let term = serde_json::to_string(query.trim()).unwrap();
    let Some(json) = wait_for(tab, &format!("{RESULTS}({term})")) else {
        let state = eval(tab, SEARCH_STATE);
        panic!("no search result for {query:?} within 10 s (message, input: {state})");
    };
    serde_json::from_str(&json).unwrap()
}

/// Searches for each of `queries` in turn with the search form's submit (what Enter in the
/// box does: it searches at once, where typing waits for a pause first), all in one call
/// into the page, and returns the result links of each, as `search` does.
fn submit_searches(tab: &Tab, queries: &[&str]) -> Vec<Vec<String>> {
    let js = format!(
        "(async () => {{
            const until = {UNTIL}, results = {RESULTS};
            const input = document.querySelector('#pagefind-panel input');
            const all = [];
            for (const query of {queries}) {{
                input.value = query;
                input.form.requestSubmit();
                const links = await until(() => results(query.trim()));
                if (!links) return {{ query, state: {SEARCH_STATE} }};
                all.push(links);
            }}
            return all; }})()",
        queries = serde_json::to_string(queries).unwrap()
    );
    let json = eval(tab, &js);
    serde_json::from_str(&json).unwrap_or_else(|_| {
        panic!("a search did not finish within 10 s (query, message and input: {json})")
    })
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
    // What the pages contain, read while the browser searches.
    let pages = std::thread::spawn(page_texts);
    open(&tab, &SITE.url(&chapters()[0]));
    open_search(&tab);

    // The first query is typed, the others are submitted (the same search, without the
    // pause that typing waits for); the nonsense word comes last.
    let nonsense = "ヌポラゲピュ";
    let mut hits = vec![search(&tab, QUERIES[0].0)];
    let submitted: Vec<&str> = QUERIES[1..].iter().map(|&(query, _)| query).collect();
    hits.extend(submit_searches(
        &tab,
        &[&submitted[..], &[nonsense]].concat(),
    ));
    let nothing = hits.pop().unwrap();

    let pages = pages.join().unwrap();
    let mut wrong = Vec::new();
    for (&(query, term), hits) in QUERIES.iter().zip(&hits) {
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
    if !nothing.is_empty() {
        wrong.push(format!("{nonsense} found something: {nothing:?}"));
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
        submit_searches(&tab, &[query]);
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
    // Every link of the last results (pages and headings) resolves under the sub-path, to
    // the page itself (not a redirect), at a heading of it when it has a `#`.
    let links = eval(
        &tab,
        "[...document.querySelectorAll('.pagefind-ui__result-link')]
            .map(a => [a.getAttribute('href'), decodeURIComponent(a.hash.slice(1))])",
    );
    let links: Vec<(String, String)> = serde_json::from_str(&links).unwrap();
    assert!(!links.is_empty());
    assert!(links.iter().any(|(_, id)| !id.is_empty()), "{links:?}");
    for (link, id) in &links {
        let (status, body) = http_get(SITE.addr, link.split('#').next().unwrap());
        assert_eq!(status, 200, "{link}");
        if !id.is_empty() {
            let selector = format!("[id={}]", serde_json::to_string(id).unwrap());
            let selector = scraper::Selector::parse(&selector).unwrap();
            let page = scraper::Html::parse_document(&body);
            assert!(page.select(&selector).next().is_some(), "{link}: no #{id}");
        }
    }
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
    open(&tab, &SITE.url("index.html"));
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
    wait_for(&tab, "document.querySelector('#pagefind-toggle')")
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
    let fake = tab
        .call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": fake_playground }),
        )
        .unwrap();
    let runnable = page_with("<pre class=\"playground\">").expect("a page with a runnable listing");
    open(&tab, &SITE.url(&runnable));
    // Every runnable listing shows its button once the crate list has arrived; `no_run` ones not.
    let buttons = "[...document.querySelectorAll('pre.playground')].map(p => {
        const b = p.querySelector('.play-button');
        const noRun = p.querySelector('code').classList.contains('no_run');
        return (noRun ? 'no_run ' : 'run ') + (b && !b.hidden && !b.classList.contains('hidden') ? 'shown' : 'hidden'); })";
    // (≤ 10 s for the first button; the test then looks at all of them.)
    wait_for(&tab, &format!("{buttons}.includes('run shown')"));
    let buttons = eval_list(&tab, buttons);
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
    tab.call(
        "Page.removeScriptToEvaluateOnNewDocument",
        json!({ "identifier": fake["identifier"] }),
    )
    .unwrap();
    // (On the same page when it has a diagram.)
    let diagrams = page_with("class=\"diagram\"").expect("a page with a diagram");
    if diagrams != runnable {
        open(&tab, &SITE.url(&diagrams));
    }
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

/// The code blocks of the open page that do not fit its width, by their first long line (the
/// code element scrolls inside its `pre` on screen; in print nothing scrolls).
const CUT_CODE: &str = "[...document.querySelectorAll('main pre, main pre > code')]
    .filter(e => e.scrollWidth > e.clientWidth + 1)
    .map(e => e.textContent.split('\\n').find(l => l.length > 60) || e.textContent.slice(0, 60))";

#[test]
fn print_view_has_every_page_in_order_and_prints_to_pdf() {
    let chapters = chapters();
    // The top headings of each chapter, in reading order, as print.html must show them, and
    // the diagrams (SVG data: URLs, so they show wherever the page is).
    let h1 = scraper::Selector::parse("main h1").unwrap();
    let diagram = scraper::Selector::parse("main .diagram img").unwrap();
    let mut expected = Vec::new();
    let mut diagrams = Vec::new();
    for page in &chapters {
        let text = std::fs::read_to_string(SITE.html.join(page)).unwrap();
        let doc = scraper::Html::parse_document(&text);
        let headings: Vec<String> = doc.select(&h1).map(|h| h.text().collect()).collect();
        assert!(!headings.is_empty(), "{page} has no heading");
        expected.extend(headings);
        diagrams.extend(
            doc.select(&diagram)
                .filter_map(|i| i.value().attr("src"))
                .map(str::to_owned),
        );
    }
    assert!(expected.len() >= 20, "{expected:?}");
    assert!(diagrams.len() >= 2, "{} diagrams", diagrams.len());
    assert!(
        diagrams
            .iter()
            .all(|src| src.starts_with("data:image/svg+xml")),
        "diagrams are SVG data: URLs"
    );
    // print.html is mdBook's static HTML of all the pages: what it shows is what it contains.
    let print = std::fs::read_to_string(SITE.html.join("print.html")).unwrap();
    let print = scraper::Html::parse_document(&print);
    let shown: Vec<String> = print.select(&h1).map(|h| h.text().collect()).collect();
    assert_eq!(
        shown, expected,
        "print.html has every page, in reading order"
    );
    let printed: Vec<&str> = print
        .select(&diagram)
        .filter_map(|i| i.value().attr("src"))
        .collect();
    assert!(
        printed == diagrams,
        "print.html has every diagram ({} of {})",
        printed.len(),
        diagrams.len()
    );

    let Some(tab) = tab() else { return };
    // With BOOK_PDF=path/book.pdf the test prints the whole book there (A4) and reports the
    // page count. That takes ~20 s: Chromium lays out all of print.html, whatever the page
    // range. Otherwise the test looks at the print CSS on one chapter page (the stylesheets
    // of print.html are the same) and prints that page.
    let whole = std::env::var_os("BOOK_PDF")
        .map(PathBuf::from)
        .map(|path| xtask::workspace_root().join(path)); // relative to the repository
    let page = if whole.is_some() {
        // print.html opens the print dialog when loaded; the test prints through DevTools instead.
        let no_dialog = tab
            .call(
                "Page.addScriptToEvaluateOnNewDocument",
                json!({ "source": "window.print = () => {};" }),
            )
            .unwrap();
        // print.html is the whole book: give it time to load on a busy machine.
        open_within(&tab, &SITE.url("print.html"), Duration::from_secs(60));
        tab.call(
            "Page.removeScriptToEvaluateOnNewDocument",
            json!({ "identifier": no_dialog["identifier"] }),
        )
        .unwrap();
        "print.html".to_owned()
    } else {
        // A page with a diagram, and with code lines wider than the page (they scroll).
        let page = page_with("class=\"diagram\"").expect("a page with a diagram");
        open(&tab, &SITE.url(&page));
        assert_ne!(
            eval(&tab, CUT_CODE),
            "[]",
            "{page} has code wider than the page on screen"
        );
        page
    };

    tab.call("Emulation.setEmulatedMedia", json!({ "media": "print" }))
        .unwrap();
    let hidden = eval(
        &tab,
        "['#pagefind-toggle', '#mdbook-sidebar', '#mdbook-menu-bar', '.nav-chapters']
            .filter(s => { const e = document.querySelector(s); return e && getComputedStyle(e).display !== 'none'
                && e.getBoundingClientRect().height > 0; })",
    );
    assert_eq!(
        hidden, "[]",
        "{page}: search and navigation are hidden in print"
    );
    let cut = eval(&tab, CUT_CODE);
    assert_eq!(cut, "[]", "{page}: code blocks wrap in print");
    assert_eq!(
        eval(
            &tab,
            "(() => { const imgs = [...document.querySelectorAll('.diagram img')];
              return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0
                && i.getBoundingClientRect().height > 0); })()"
        ),
        "true",
        "{page}: the diagrams render in print"
    );
    assert_eq!(
        eval(
            &tab,
            "[...document.querySelectorAll('.diagram img')].filter(i => {
                const column = i.closest('main').getBoundingClientRect();
                const box = i.getBoundingClientRect();
                return box.left < column.left - 1 || box.right > column.right + 1;
             }).map(i => Math.round(i.getBoundingClientRect().width) + 'px')"
        ),
        "[]",
        "{page}: diagrams fit the text column in print (padding included)"
    );

    let started = Instant::now();
    let pdf = tab
        .print_to_pdf(json!({ "printBackground": false, "paperWidth": 8.27, "paperHeight": 11.69 }))
        .expect("Chromium prints the book to PDF");
    let pages = pdf
        .windows(b"/Type /Page".len() + 1)
        .filter(|w| w.starts_with(b"/Type /Page") && w[w.len() - 1] != b's')
        .count();
    eprintln!(
        "{page} → PDF: {pages} A4 pages, {} KiB, {:.1?}",
        pdf.len() / 1024,
        started.elapsed()
    );
    tab.call("Emulation.setEmulatedMedia", json!({ "media": "" }))
        .unwrap();
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

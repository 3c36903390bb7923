//! What `cargo xtask` does, as a library so that the book's tests build the book the same way.
//!
//! - [`build_book`]: mdBook (as a library) + the [`Diagrams`] preprocessor + the Pagefind index;
//!   [`build_book_for_tests`]: the same, built once and reused while its inputs are unchanged.
//! - [`router`]: the static file server of `cargo xtask serve` and of the browser test.
//! - [`check_links`]: every internal link and `#anchor` of the built HTML resolves.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use base64::Engine as _;
use mdbook_driver::MDBook;
use mdbook_driver::book::{Book, BookItem};
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};

/// The repository root (the directory that holds `book.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds the HTML book into `dest` (default: `book.toml`'s `build-dir`, i.e. `book/`),
/// renders the diagrams and writes the Japanese search index. Returns the HTML directory.
pub fn build_book(root: &Path, dest: Option<&Path>) -> Result<PathBuf> {
    let mut book = MDBook::load(root).map_err(|e| anyhow!("{e:#}"))?;
    if let Some(dest) = dest {
        book.config.build.build_dir = dest.to_path_buf();
    }
    book.with_preprocessor(Diagrams);
    book.build().map_err(|e| anyhow!("{e:#}"))?;
    let html = book.build_dir_for("html");
    let title = book.config.book.title.clone().unwrap_or_default();
    add_link_previews(&html, &title)?;
    index_for_search(&html)?;
    Ok(html)
}

/// The book built for the tests, shared by every test binary (`tests/book.rs`, the browser
/// test) and reused while nothing it is built from changed: a warm `cargo test` does not
/// build the book at all. Each build lives in `<target>/book-for-tests/<fingerprint>/`, the
/// fingerprint being a hash of its inputs (`book.toml`, `src/`, `theme/`, `listings/`, and
/// this crate's sources, which decide how it is built). A build is moved into place whole, a
/// file lock keeps two `cargo test`s from building at once, and a build is only removed
/// when it is an hour old and another one is current, so a test still reading it keeps it.
/// Returns the HTML directory. Nothing may write into it.
pub fn build_book_for_tests(root: &Path) -> Result<PathBuf> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    use std::time::{Duration, SystemTime};

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    let dir = target.join("book-for-tests");
    fs::create_dir_all(&dir)?;

    let mut hasher = DefaultHasher::new();
    let mut inputs = vec![root.join("book.toml")];
    for sub in ["src", "theme", "listings", "xtask/src"] {
        inputs.extend(files_under(&root.join(sub))?);
    }
    inputs.sort();
    for file in &inputs {
        file.hash(&mut hasher);
        fs::read(file)
            .with_context(|| file.display().to_string())?
            .hash(&mut hasher);
    }
    let fingerprint = format!("{:016x}", hasher.finish());
    let current = dir.join(&fingerprint);
    // mdBook writes the HTML into the build directory itself when it is the only renderer
    let html = |build: &Path| {
        let nested = build.join("html");
        if nested.is_dir() {
            nested
        } else {
            build.to_path_buf()
        }
    };
    if html(&current).join("index.html").exists() {
        return Ok(html(&current));
    }

    let lock = fs::File::create(dir.join("lock"))?;
    lock.lock()?; // released when `lock` is dropped
    if !html(&current).join("index.html").exists() {
        let building = dir.join(format!("building-{}", std::process::id()));
        if building.exists() {
            fs::remove_dir_all(&building)?;
        }
        build_book(root, Some(&building))?;
        if current.exists() {
            fs::remove_dir_all(&current)?; // an incomplete build (interrupted before the rename)
        }
        fs::rename(&building, &current)?;
    }
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for entry in fs::read_dir(&dir)?.flatten() {
        let path = entry.path();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < an_hour_ago);
        if path.is_dir() && path != current && old {
            let _ = fs::remove_dir_all(&path);
        }
    }
    Ok(html(&current))
}

/// Every file under `dir` (build output `target/` excluded), or none if `dir` does not exist.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
            } else {
                found.push(path);
            }
        }
    }
    Ok(found)
}

/// How many characters of a page's first paragraph its link preview shows.
const DESCRIPTION_CHARS: usize = 120;

/// Gives each page a description and Open Graph tags taken from its first paragraph, so a
/// link to it pasted into a chat shows what the page is about, not only the book's title.
/// (mdBook writes `<meta name="description">` with the book's description on every page;
/// a plain `mdbook build` keeps that.) Returns how many pages got one.
pub fn add_link_previews(html: &Path, book_title: &str) -> Result<usize> {
    let main_p = scraper::Selector::parse("main > p").unwrap();
    let h1 = scraper::Selector::parse("main h1").unwrap();
    let description_tag = regex::Regex::new(r#"<meta name="description" content="[^"]*">"#)?;
    let mut pages = 0;
    for (page, rel) in built_pages(html)? {
        if rel.starts_with("pagefind/")
            || ["print.html", "toc.html", "404.html"].contains(&rel.as_str())
        {
            continue;
        }
        let text = fs::read_to_string(&page)?;
        let doc = scraper::Html::parse_document(&text);
        let squash = |el: scraper::ElementRef| {
            el.text()
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        let Some(paragraph) = doc.select(&main_p).map(squash).find(|t| !t.is_empty()) else {
            continue;
        };
        let heading = doc.select(&h1).next().map(squash).unwrap_or_default();
        let description = summarize(&paragraph, DESCRIPTION_CHARS);
        let attr = |s: &str| {
            s.replace('&', "&amp;")
                .replace('"', "&quot;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let tags = format!(
            "<meta name=\"description\" content=\"{d}\">\n        \
             <meta property=\"og:type\" content=\"article\">\n        \
             <meta property=\"og:site_name\" content=\"{s}\">\n        \
             <meta property=\"og:title\" content=\"{t}\">\n        \
             <meta property=\"og:description\" content=\"{d}\">\n        \
             <meta name=\"twitter:card\" content=\"summary\">",
            d = attr(&description),
            s = attr(book_title),
            t = attr(if heading.is_empty() {
                book_title
            } else {
                &heading
            }),
        );
        if !description_tag.is_match(&text) {
            anyhow::bail!("{rel}: mdBook's <meta name=\"description\"> tag is missing");
        }
        let text = description_tag.replace(&text, regex::NoExpand(&tags));
        fs::write(&page, text.as_ref())?;
        pages += 1;
    }
    Ok(pages)
}

/// The first `max` characters of `text`, cut after the last full sentence (「。」) that fits,
/// or with an ellipsis when not even one does.
fn summarize(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let head: String = text.chars().take(max).collect();
    match head.rfind('。') {
        Some(end) if end > head.len() / 3 => head[..end + '。'.len_utf8()].to_owned(),
        _ => format!("{}…", head.chars().take(max - 1).collect::<String>()),
    }
}

/// Pages that repeat other pages' text: indexing them would give every hit twice.
const NOT_INDEXED: [&str; 4] = ["index.html", "print.html", "404.html", "toc.html"];

/// Overview pages name every topic of the chapter in a few lines, so on term density they
/// would outrank the page that actually explains a topic. They are indexed at a fifth of
/// the weight: still found, but after the explaining page.
const OVERVIEW_PAGES: [&str; 4] = [
    "ch19-00-intro.html",
    "ch19-05-summary.html",
    "ch19-05-python-rust-map.html",
    "ch19-06-exercises.html",
];

/// Writes a Pagefind index of the chapters into `html/pagefind/`.
///
/// mdBook's own search index is empty for Japanese (it splits words on spaces), so the book
/// uses Pagefind, whose `extended` build segments Japanese with ICU. Only `<main>` is indexed,
/// so the sidebar and navigation do not match every query.
pub fn index_for_search(html: &Path) -> Result<usize> {
    use pagefind::api::PagefindIndex;
    use pagefind::options::PagefindServiceConfig;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = PagefindServiceConfig::builder()
            .root_selector("main".into())
            .build();
        let mut index = PagefindIndex::new(Some(config))?;
        let mut pages = 0;
        for (page, rel) in built_pages(html)? {
            if NOT_INDEXED.contains(&rel.as_str()) {
                continue;
            }
            let mut content = fs::read_to_string(&page)?;
            // Code is not what a reader searches the prose for: the comments of a long
            // solution would outrank the page that explains a term, and give the same
            // excerpt under several headings. API names are found in the prose around it.
            content = content
                .replace("<pre>", "<pre data-pagefind-ignore>")
                .replace(
                    "<pre class=\"playground\">",
                    "<pre class=\"playground\" data-pagefind-ignore>",
                );
            if OVERVIEW_PAGES.contains(&rel.as_str()) {
                content = content.replacen("<main>", r#"<main data-pagefind-weight="0.2">"#, 1);
            }
            index.add_html_file(Some(rel), None, content).await?;
            pages += 1;
        }
        index
            .write_files(Some(html.join("pagefind").to_string_lossy().into_owned()))
            .await?;
        Ok(pages)
    })
}

/// Every file under `dir` whose name ends in `.ext`, sorted.
/// Every HTML page of a built book, with its path relative to the book's root written with
/// `/` (as links and the search index name it).
fn built_pages(html: &Path) -> Result<Vec<(PathBuf, String)>> {
    files_with_extension(html, "html")?
        .into_iter()
        .map(|page| {
            let rel = page
                .strip_prefix(html)?
                .to_string_lossy()
                .replace('\\', "/");
            Ok((page, rel))
        })
        .collect()
}

pub fn files_with_extension(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Every listing crate directory (`listings/<section>/<name>`), sorted.
pub fn listing_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for section in fs::read_dir(root.join("listings"))? {
        let section = section?.path();
        if !section.is_dir() {
            continue;
        }
        for listing in fs::read_dir(&section)? {
            let listing = listing?.path();
            if listing.join("Cargo.toml").exists() {
                dirs.push(listing);
            }
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Whether any test file of the listing in `dir` (`tests/**/*.rs`) contains `needle`.
pub fn tests_mention(dir: &Path, needle: &str) -> bool {
    let tests = dir.join("tests");
    tests.is_dir()
        && files_with_extension(&tests, "rs")
            .unwrap_or_default()
            .iter()
            .any(|f| fs::read_to_string(f).is_ok_and(|text| text.contains(needle)))
}

/// Renders ```` ```svgbob ```` blocks (ASCII/box-drawing art) as SVG images at build time.
///
/// The SVG goes into an `<img>` as a data URL, so its stylesheet cannot leak into the page.
/// The words after `svgbob` on the fence line become the image's `alt` text.
/// A reader using plain `mdbook serve` sees the same art as a text block.
pub struct Diagrams;

impl Preprocessor for Diagrams {
    fn name(&self) -> &str {
        "svgbob-diagrams"
    }

    fn run(
        &self,
        _ctx: &PreprocessorContext,
        mut book: Book,
    ) -> mdbook_preprocessor::errors::Result<Book> {
        book.for_each_mut(|item| {
            if let BookItem::Chapter(chapter) = item {
                chapter.content = render_diagrams(&chapter.content);
            }
        });
        Ok(book)
    }

    fn supports_renderer(&self, renderer: &str) -> mdbook_preprocessor::errors::Result<bool> {
        Ok(renderer == "html")
    }
}

/// Replaces each ```` ```svgbob ```` fence in `markdown` with an `<img>` of its SVG.
pub fn render_diagrams(markdown: &str) -> String {
    book_markdown::replace_code_blocks(markdown, |block| {
        if block.lang() != "svgbob" {
            return None;
        }
        let svg = svgbob::to_svg(&block.body).replace(
            "Iosevka Fixed, monospace",
            "'Noto Sans Mono CJK JP', 'Noto Sans CJK JP', monospace",
        );
        let data = base64::engine::general_purpose::STANDARD.encode(svg);
        // the words after `svgbob` on the fence line
        let alt = block.info.trim()["svgbob".len()..]
            .trim()
            .replace('"', "&quot;");
        Some(format!(
            "<div class=\"diagram\"><img src=\"data:image/svg+xml;base64,{data}\" alt=\"{alt}\"></div>\n"
        ))
    })
}

/// The path the book is published under: `book.toml`'s `site-url` (such as `/ch19/`, which
/// `404.html` takes its assets from), overridden by `MDBOOK_OUTPUT__HTML__SITE_URL` as mdBook
/// allows; `/` when it is not set.
pub fn site_path(root: &Path) -> Result<String> {
    let book = MDBook::load(root).map_err(|e| anyhow!("{e:#}"))?;
    let url = book
        .config
        .get::<String>("output.html.site-url")
        .map_err(|e| anyhow!("{e:#}"))?
        .unwrap_or_default();
    let path = url.trim_matches('/');
    Ok(if path.is_empty() {
        "/".to_owned()
    } else {
        format!("/{path}/")
    })
}

/// The script that reloads a page of `cargo xtask serve` after a rebuild. It is not part of
/// the book: [`router`] adds it to the pages it serves when asked to.
const RELOAD_JS: &str = include_str!("reload.js");

/// The static book server of `cargo xtask serve` and of the browser test, serving as GitHub
/// Pages does: the files of `dir` under `base` (the book's [`site_path`], e.g. `/ch19/`;
/// `/` and `/ch19` redirect there), and `404.html` with status 404 for anything else.
///
/// With `live_reload` (`cargo xtask serve`), every HTML page also gets a `<script>` that polls
/// `/__xtask/generation` (the counter, bumped after each rebuild) and reloads the page when it
/// changes. The built book itself has no such script.
pub fn router(
    dir: &Path,
    base: &str,
    live_reload: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
) -> axum::Router {
    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::{StatusCode, header};
    use axum::response::{IntoResponse, Redirect, Response};
    use axum::routing::get;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use tower_http::services::{ServeDir, ServeFile};

    let base: Arc<str> = match base.trim_matches('/') {
        "" => "/".into(),
        path => format!("/{path}/").into(),
    };
    let inject = live_reload.is_some();
    let files = ServeDir::new(dir).not_found_service(ServeFile::new(dir.join("404.html")));
    let book = move |mut request: Request| {
        let (base, mut files) = (Arc::clone(&base), files.clone());
        async move {
            let path = request.uri().path();
            if path == "/" || format!("{path}/") == *base {
                return Redirect::temporary(&base).into_response();
            }
            // Outside the book: ask for a file that does not exist, to get the 404 page.
            let rest = path.strip_prefix(&*base).unwrap_or(".not-found");
            let query = request.uri().query().map(|q| format!("?{q}"));
            let uri = format!("/{rest}{}", query.unwrap_or_default());
            *request.uri_mut() = uri
                .parse()
                .unwrap_or_else(|_| axum::http::Uri::from_static("/.not-found"));
            let response = match files.try_call(request).await {
                Ok(response) => response.map(Body::new),
                Err(e) => {
                    return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
                }
            };
            let is_html = response
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
            if !(inject && is_html) {
                return response;
            }
            let (mut parts, body) = response.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            let page = String::from_utf8_lossy(&bytes).replacen(
                "</body>",
                "<script src=\"/__xtask/reload.js\"></script></body>",
                1,
            );
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(page))
        }
    };
    let mut router = axum::Router::new();
    if let Some(generation) = live_reload {
        router = router
            .route(
                "/__xtask/generation",
                get(move || async move { generation.load(Ordering::SeqCst).to_string() }),
            )
            .route(
                "/__xtask/reload.js",
                get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], RELOAD_JS) }),
            );
    }
    router.fallback(book)
}

/// Links found in the built book.
#[derive(Debug, Default)]
pub struct Links {
    /// Internal links whose page or `#anchor` does not exist: `(page, href)`.
    pub broken: Vec<(String, String)>,
    /// External links (not fetched; listed so a human can check them).
    pub external: BTreeSet<String>,
    /// How many internal links were checked.
    pub checked: usize,
}

/// Checks every `href` in the chapters of the built book in `html`.
pub fn check_links(html: &Path) -> Result<Links> {
    let with_id = scraper::Selector::parse("[id]").unwrap();
    let anchor = scraper::Selector::parse("a[href]").unwrap();

    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut hrefs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (page, rel) in built_pages(html)? {
        // print.html repeats every chapter; nothing links into it by anchor
        if rel.starts_with("pagefind/") || rel == "print.html" {
            continue;
        }
        let doc = scraper::Html::parse_document(&fs::read_to_string(&page)?);
        ids.insert(
            rel.clone(),
            doc.select(&with_id)
                .filter_map(|e| e.value().attr("id"))
                .map(str::to_owned)
                .collect(),
        );
        if !NOT_INDEXED.contains(&rel.as_str()) {
            // generated by mdBook (index, toc, 404) are not written by us
            hrefs.insert(
                rel,
                doc.select(&anchor)
                    .filter_map(|e| e.value().attr("href"))
                    .map(str::to_owned)
                    .collect(),
            );
        }
    }

    let mut links = Links::default();
    for (page, targets) in &hrefs {
        let base = Path::new(page).parent().unwrap_or(Path::new(""));
        for target in targets {
            if target.contains("://") || target.starts_with("mailto:") {
                links.external.insert(target.clone());
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if file.is_empty() {
                page.clone()
            } else {
                normalize(&base.join(file))
            };
            links.checked += 1;
            let exists = ids
                .get(&file)
                .is_some_and(|ids| anchor.is_empty() || ids.contains(anchor))
                || (anchor.is_empty() && html.join(&file).exists());
            if !exists {
                links.broken.push((page.clone(), target.clone()));
            }
        }
    }
    Ok(links)
}

/// `a/../b/./c.html` → `b/c.html`
fn normalize(path: &Path) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.to_str().unwrap_or_default().split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagrams_become_svg_images_and_other_blocks_stay() {
        let md =
            "前\n```svgbob スレッドの図\n+---+\n| A |\n+---+\n```\n```rust\nfn main() {}\n```\n";
        let out = render_diagrams(md);
        assert!(
            out.starts_with("前\n<div class=\"diagram\"><img src=\"data:image/svg+xml;base64,")
        );
        assert!(out.contains("alt=\"スレッドの図\""));
        assert!(out.ends_with("```rust\nfn main() {}\n```\n"));
        let data = out
            .split("base64,")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let svg = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap(),
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
    }

    #[test]
    fn paths_are_normalized() {
        assert_eq!(normalize(Path::new("a/../b/./c.html")), "b/c.html");
        assert_eq!(normalize(Path::new("ch19-01.html")), "ch19-01.html");
    }

    #[test]
    fn link_previews_end_at_a_sentence() {
        assert_eq!(summarize("短い段落です。", 10), "短い段落です。");
        assert_eq!(
            summarize("一つ目の文です。二つ目の文は長いです。", 12),
            "一つ目の文です。"
        );
        assert_eq!(summarize("句点のない長い長い段落", 6), "句点のない…");
    }
}

//! The Python→Rust map (`src/ch19-05-python-rust-map.md`): every row points at a page that is
//! in SUMMARY.md, at a heading of that page, and at a listing crate (named by its package name,
//! which is its directory name under `listings/<section>/`) that exists and is shown on that
//! page; and every Python API the chapter's issue names has a row. That each `#heading` exists
//! in the built HTML is checked with every other link of the book, by the link check in
//! `tests/book.rs`.

use std::fs;
use std::path::PathBuf;

const MAP_PAGE: &str = "ch19-05-python-rust-map.md";

/// The Python APIs that must each have a row (matched against the Python column).
const REQUIRED: &[&str] = &[
    "`threading.Thread`",
    "`threading.Lock`",
    "`threading.RLock`",
    "`threading.Semaphore`",
    "`threading.Event`",
    "`threading.Condition`",
    "`queue.Queue`",
    "`multiprocessing.Process`",
    "`multiprocessing.Pool`の`map`",
    "`multiprocessing.Pool`の`map_async`",
    "`multiprocessing.Queue`",
    "`multiprocessing.Pipe`",
    "`multiprocessing.Value`",
    "`multiprocessing.Array`",
    "`asyncio.gather`",
    "`asyncio.create_task`",
    "`asyncio.wait_for`",
    "`Task.cancel`",
    "`asyncio.Semaphore`",
    "非同期コンテキストマネージャ",
    "非同期イテレータ",
    "非同期ジェネレータ",
    "`aiohttp`",
    "`concurrent.futures.ThreadPoolExecutor`",
    "`concurrent.futures.ProcessPoolExecutor`",
    "`weakref.WeakSet`",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One data row of a table on the map page.
#[derive(Debug)]
struct Row {
    line: usize,
    python: String,
    /// `(page.md, anchor)` of every link in the "where" column.
    links: Vec<(String, String)>,
    /// The package names in the listing column (a listing's package name is its directory name).
    listings: Vec<String>,
}

/// The data rows of every 4-column table on the page (header and separator rows skipped).
fn rows(markdown: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, line) in markdown.lines().enumerate() {
        let Some(inner) = line
            .trim()
            .strip_prefix('|')
            .and_then(|l| l.strip_suffix('|'))
        else {
            continue;
        };
        let cells: Vec<&str> = inner.split('|').map(str::trim).collect();
        assert_eq!(
            cells.len(),
            4,
            "line {}: a map row has 4 columns: {line}",
            i + 1
        );
        if cells[0] == "Python" || cells[0].starts_with("---") {
            continue;
        }
        rows.push(Row {
            line: i + 1,
            python: cells[0].to_string(),
            links: links(cells[2]),
            listings: code_spans(cells[3])
                .into_iter()
                .map(str::to_string)
                .collect(),
        });
    }
    rows
}

/// `(page.md, anchor)` of every Markdown link `[...](page.md#anchor)` in `cell`.
/// A link without `#anchor` gives an empty anchor, which no heading has.
fn links(cell: &str) -> Vec<(String, String)> {
    cell.split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')'))
        .map(|(target, _)| {
            let (page, anchor) = target.split_once('#').unwrap_or((target, ""));
            (page.to_string(), anchor.to_string())
        })
        .collect()
}

/// The contents of the code in `cell`: `` `code spans` `` and `<code ...>` elements (the map
/// writes listing names as `<code style="white-space: nowrap">` so that they are not broken).
fn code_spans(cell: &str) -> Vec<&str> {
    let mut found: Vec<&str> = cell.split('`').skip(1).step_by(2).collect();
    found.extend(
        cell.split("<code")
            .skip(1)
            .filter_map(|rest| rest.split_once('>'))
            .filter_map(|(_, rest)| rest.split_once("</code>"))
            .map(|(code, _)| code),
    );
    found
}

/// `listings/<section>/<name>` for every listing crate directory called `name`.
fn listing_dirs(name: &str) -> Vec<String> {
    xtask::listing_dirs(&root())
        .unwrap()
        .iter()
        .filter(|dir| dir.file_name().is_some_and(|n| n == name))
        .map(|dir| {
            dir.strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect()
}

fn map_rows() -> Vec<Row> {
    let markdown =
        fs::read_to_string(root().join("src").join(MAP_PAGE)).expect("the map page exists");
    let rows = rows(&markdown);
    assert!(
        rows.len() >= REQUIRED.len(),
        "the map has only {} rows",
        rows.len()
    );
    rows
}

#[test]
fn the_map_has_a_row_for_every_python_api_of_the_chapter() {
    let rows = map_rows();
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|api| !rows.iter().any(|row| row.python.contains(api)))
        .collect();
    assert!(
        missing.is_empty(),
        "no row of the map names these Python APIs: {missing:?}"
    );
}

#[test]
fn every_row_of_the_map_links_to_a_heading_and_a_listing_on_that_page() {
    let summary = fs::read_to_string(root().join("src/SUMMARY.md")).unwrap();
    assert!(
        summary.contains(&format!("]({MAP_PAGE})")),
        "the map page is not in SUMMARY.md"
    );

    let mut problems = Vec::new();
    for row in map_rows() {
        let at = format!("{MAP_PAGE}:{} ({})", row.line, row.python);
        if row.links.is_empty() {
            problems.push(format!("{at}: no link to a page#heading"));
        }
        if row.listings.is_empty() {
            problems.push(format!("{at}: no listing in the last column"));
        }
        let mut pages_text = String::new();
        for (page, anchor) in &row.links {
            if !summary.contains(&format!("]({page})")) {
                problems.push(format!("{at}: {page} is not in SUMMARY.md"));
                continue;
            }
            if anchor.is_empty() {
                problems.push(format!("{at}: the link to {page} names no #heading"));
            }
            pages_text
                .push_str(&fs::read_to_string(root().join("src").join(page)).unwrap_or_default());
        }
        for name in &row.listings {
            let dirs = listing_dirs(name);
            match dirs.as_slice() {
                [dir] if pages_text.contains(&format!("../{dir}/")) => {}
                [dir] => problems.push(format!("{at}: the linked page does not include {dir}")),
                [] => problems.push(format!("{at}: there is no listing crate listings/*/{name}")),
                _ => problems.push(format!("{at}: {name} names several listings: {dirs:?}")),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the Python→Rust map has broken rows:\n{}",
        problems.join("\n")
    );
}

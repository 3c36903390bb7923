//! The book as a whole: it builds, every page exists, nothing is left unexpanded,
//! and every listing crate is shown somewhere.
//! (Broken includes and anchors are caught earlier, by build.rs; each listing's
//! `output.txt` is checked by that listing's own test.)

use std::fs;
use std::path::PathBuf;

use mdbook_driver::MDBook;
use mdbook_driver::book::BookItem;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_html_book_builds_and_every_link_resolves() {
    let out = tempfile::tempdir().unwrap();
    // the same build as `cargo xtask build`: diagrams rendered, search index written
    let html_dir = xtask::build_book(&root(), Some(out.path())).expect("the HTML book builds");
    assert!(html_dir.join("index.html").exists());
    assert!(
        html_dir.join("pagefind/pagefind-entry.json").exists(),
        "the search index was written"
    );
    let book = MDBook::load(root()).expect("the book loads (every page in SUMMARY.md exists)");
    let pages = xtask::files_with_extension(&html_dir, "html").unwrap();
    for page in &pages {
        let html = fs::read_to_string(page).unwrap();
        assert!(
            !html.contains("{{#"),
            "{}: an mdBook directive was left unexpanded",
            page.display()
        );
        assert!(
            html.contains(r#"lang="ja""#),
            "{}: the page is not marked as Japanese",
            page.display()
        );
    }
    for chapter in book.iter() {
        if let BookItem::Chapter(ch) = chapter
            && let Some(path) = &ch.path
        {
            let page = html_dir.join(path.with_extension("html"));
            assert!(page.exists(), "{} was not rendered", page.display());
        }
    }

    let links = xtask::check_links(&html_dir).unwrap();
    let broken: Vec<String> = links
        .broken
        .iter()
        .map(|(page, href)| format!("{page}: {href}"))
        .collect();
    assert!(
        broken.is_empty(),
        "broken internal links or anchors:\n{}",
        broken.join("\n")
    );
    assert!(links.checked > 0);
    // External links are not fetched (tests run offline); they are listed for a human to check
    // with `cargo test -- --nocapture`.
    for url in &links.external {
        println!("external link: {url}");
    }
}

#[test]
fn every_listing_crate_is_shown_in_the_book() {
    let pages = xtask::files_with_extension(&root().join("src"), "md").unwrap();
    let text: String = pages
        .iter()
        .map(|p| fs::read_to_string(p).unwrap())
        .collect();

    let mut orphans = Vec::new();
    for dir in xtask::listing_dirs(&root()).unwrap() {
        let rel = dir
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if !text.contains(&format!("{rel}/")) {
            orphans.push(rel);
        }
    }
    assert!(
        orphans.is_empty(),
        "listing crates that no page includes: {orphans:?}"
    );
}

#[test]
fn every_listing_with_output_has_a_drift_test() {
    let missing: Vec<String> = xtask::listing_dirs(&root())
        .unwrap()
        .into_iter()
        .filter(|dir| dir.join("output.txt").exists())
        .filter(|dir| !xtask::tests_mention(dir, "book_support::output_test!()"))
        .map(|dir| dir.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "output.txt without `book_support::output_test!()`: {missing:?}"
    );
}

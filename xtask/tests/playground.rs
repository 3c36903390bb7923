//! Run buttons that really run: every listing that the book shows with a Run button uses only
//! crates the Rust Playground has (`xtask/data/playground-crates.txt`, copied from the
//! Playground's repository), at a version compatible with the one the book is tested with.
//!
//! A Run button sends the whole program (hidden lines included) to play.rust-lang.org. mdBook
//! gives a ```` ```rust ```` block a Run button unless it is marked `ignore`, `noplayground` or
//! `noplaypen` (book.toml has `runnable = true`), and its `book.js` hides the button of a
//! `no_run` block. A listing that needs a local crate, a crate the Playground lacks, or that
//! cannot run in its sandbox is marked `noplayground`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use mdbook_driver::MDBook;
use mdbook_driver::builtin_renderers::MarkdownRenderer;
use proc_macro2::{Spacing, TokenStream, TokenTree};
use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};

/// Path roots that are not crates from crates.io.
const BUILTIN: &[&str] = &[
    "std", "core", "alloc", "crate", "self", "super", "bool", "char", "str", "u8", "u16", "u32",
    "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32", "f64",
];

/// The crates (as paths name them: `tokio_util`) that `code` uses: the roots of its paths
/// (`tokio::spawn`, `#[tokio::main]`, `use rayon::prelude::*`) and its `extern crate`s,
/// less the names it defines or imports itself (`mod net`, `use std::sync::mpsc` → `mpsc`).
fn crates_used(code: &str) -> BTreeSet<String> {
    let (roots, local, _) = read_paths(code);
    roots
        .into_iter()
        .filter(|root| {
            !local.contains(root)
                && !BUILTIN.contains(&root.as_str())
                && root.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        })
        .collect()
}

/// What `code` does that the Playground's sandbox does not allow (it runs one process with no
/// network): starting processes. A listing that does is marked `noplayground`.
fn sandbox_problems(code: &str) -> Vec<&'static str> {
    let (_, _, pairs) = read_paths(code);
    let mut problems = Vec::new();
    if pairs.contains("Command::new") || pairs.contains("env::current_exe") {
        problems.push("starts a process");
    }
    problems
}

/// The roots of `code`'s paths, the names it defines or imports, and every `a::b` pair in it,
/// outside `#[cfg(test)]` items.
fn read_paths(code: &str) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    // The code as the Playground gets it: mdBook hides `# ` lines on the page only.
    let code: String = code
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            match trimmed.strip_prefix('#') {
                Some(rest) if rest.is_empty() || rest.starts_with(' ') => rest.trim_start(),
                _ => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let tokens: TokenStream = code
        .parse()
        .expect("a listing with a Run button is valid Rust");
    let mut roots = BTreeSet::new();
    let mut local = BTreeSet::new();
    let mut pairs = BTreeSet::new();
    walk(tokens, &mut roots, &mut local, &mut pairs);
    (roots, local, pairs)
}

fn is_punct(token: Option<&TokenTree>, ch: char) -> bool {
    matches!(token, Some(TokenTree::Punct(p)) if p.as_char() == ch)
}

/// Whether `tokens[i..]` starts with `::`.
fn path_sep_at(tokens: &[TokenTree], i: usize) -> bool {
    matches!(tokens.get(i), Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == Spacing::Joint)
        && is_punct(tokens.get(i + 1), ':')
}

fn walk(
    stream: TokenStream,
    roots: &mut BTreeSet<String>,
    local: &mut BTreeSet<String>,
    pairs: &mut BTreeSet<String>,
) {
    let tokens: Vec<TokenTree> = stream.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        // `#[cfg(test)] item`: not compiled when the Playground runs the program.
        if is_punct(tokens.get(i), '#')
            && let Some(TokenTree::Group(attr)) = tokens.get(i + 1)
            && attr.stream().to_string().replace(' ', "") == "cfg(test)"
        {
            i += 2;
            while i < tokens.len()
                && !is_punct(tokens.get(i), ';')
                && !matches!(&tokens[i], TokenTree::Group(g) if g.delimiter() == proc_macro2::Delimiter::Brace)
            {
                i += 1;
            }
            i += 1;
            continue;
        }
        match &tokens[i] {
            TokenTree::Group(group) => walk(group.stream(), roots, local, pairs),
            TokenTree::Ident(ident) if ident == "use" => {
                // `use a::b::{c, d as e};`: `a` is a root, every other name is imported.
                let mut j = i + 1;
                if path_sep_at(&tokens, j) {
                    j += 2;
                }
                if let Some(TokenTree::Ident(root)) = tokens.get(j) {
                    roots.insert(root.to_string());
                }
                j += 1;
                while j < tokens.len() && !is_punct(tokens.get(j), ';') {
                    imported_names(&tokens[j], local);
                    j += 1;
                }
                i = j;
            }
            TokenTree::Ident(ident) if ident == "mod" || ident == "crate" => {
                // `mod name` defines a module; `extern crate name` names a crate.
                if let Some(TokenTree::Ident(name)) = tokens.get(i + 1) {
                    if ident == "mod" {
                        local.insert(name.to_string());
                    } else {
                        roots.insert(name.to_string());
                    }
                }
            }
            TokenTree::Ident(ident) => {
                // `a::b` starts a path at `a`, unless `a` continues one (`x::a::b`), is a
                // method (`.collect::<…>`), or takes a turbofish (`size_of::<T>`).
                let continues = (i >= 2 && path_sep_at(&tokens, i - 2))
                    || (i >= 1 && is_punct(tokens.get(i - 1), '.'));
                let turbofish = is_punct(tokens.get(i + 3), '<');
                if !continues && !turbofish && path_sep_at(&tokens, i + 1) {
                    roots.insert(ident.to_string());
                }
                if path_sep_at(&tokens, i + 1)
                    && let Some(TokenTree::Ident(next)) = tokens.get(i + 3)
                {
                    pairs.insert(format!("{ident}::{next}"));
                }
            }
            _ => {}
        }
        i += 1;
    }
}

fn imported_names(token: &TokenTree, local: &mut BTreeSet<String>) {
    match token {
        TokenTree::Ident(ident) => {
            local.insert(ident.to_string());
        }
        TokenTree::Group(group) => {
            for token in group.stream() {
                imported_names(&token, local);
            }
        }
        _ => {}
    }
}

/// `id → (package, version)` from `xtask/data/playground-crates.txt`.
fn playground_crates() -> BTreeMap<String, (String, String)> {
    let path = xtask::workspace_root().join("xtask/data/playground-crates.txt");
    fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let mut cols = line.split_whitespace();
            let (Some(id), Some(package), Some(version)) = (cols.next(), cols.next(), cols.next())
            else {
                panic!("{}: `{line}` is not `id package version`", path.display());
            };
            (id.to_owned(), (package.to_owned(), version.to_owned()))
        })
        .collect()
}

/// Every version of each package in `Cargo.lock`.
fn locked_versions() -> BTreeMap<String, Vec<String>> {
    let lock = fs::read_to_string(xtask::workspace_root().join("Cargo.lock")).unwrap();
    let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            package.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|v| v.strip_prefix(" = \""))
                    .and_then(|v| v.strip_suffix('"'))
            })
        };
        if let (Some(name), Some(version)) = (field("name"), field("version")) {
            versions
                .entry(name.to_owned())
                .or_default()
                .push(version.to_owned());
        }
    }
    versions
}

/// Semver-compatible: the same major version, or the same minor version of a `0.x`.
fn compatible(a: &str, b: &str) -> bool {
    let key = |v: &str| {
        let parts: Vec<&str> = v.split('.').collect();
        if parts[0] == "0" {
            parts[..2.min(parts.len())].join(".")
        } else {
            parts[0].to_owned()
        }
    };
    key(a) == key(b)
}

/// A code block of the expanded book that mdBook shows with a Run button.
struct Runnable {
    page: String,
    info: String,
    code: String,
}

/// The ```` ```rust ```` blocks that get a Run button, in the book as mdBook expands it.
fn runnable_blocks() -> Vec<Runnable> {
    let book = MDBook::load(xtask::workspace_root()).expect("the book loads");
    assert!(
        book.config
            .html_config()
            .is_some_and(|html| html.playground.runnable),
        "book.toml's [output.html.playground] runnable changed: update this test"
    );
    let (book, _) = book
        .preprocess_book(&MarkdownRenderer::new())
        .expect("the book expands");
    let mut found = Vec::new();
    for chapter in book.chapters() {
        let Some(path) = &chapter.path else { continue };
        let mut open: Option<Runnable> = None;
        for event in Parser::new(&chapter.content) {
            match event {
                Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                    let mut words = info.split([' ', '\t', ',']).filter(|w| !w.is_empty());
                    let is_rust = words.next() == Some("rust");
                    let attrs: Vec<&str> = words.collect();
                    let shown = is_rust
                        && !["ignore", "noplayground", "noplaypen", "no_run"]
                            .iter()
                            .any(|a| attrs.contains(a));
                    if shown || attrs.contains(&"mdbook-runnable") {
                        open = Some(Runnable {
                            page: path.display().to_string(),
                            info: info.to_string(),
                            code: String::new(),
                        });
                    }
                }
                Event::Text(text) => {
                    if let Some(block) = &mut open {
                        block.code.push_str(&text);
                    }
                }
                Event::End(TagEnd::CodeBlock) => found.extend(open.take()),
                _ => {}
            }
        }
    }
    found
}

#[test]
fn run_buttons_use_only_crates_the_playground_has() {
    let available = playground_crates();
    let locked = locked_versions();
    let blocks = runnable_blocks();
    assert!(
        blocks.len() >= 10,
        "only {} blocks with a Run button: is the book expanded?",
        blocks.len()
    );
    let mut problems = BTreeSet::new();
    for block in &blocks {
        let first_line = block.code.lines().find(|l| !l.trim().is_empty());
        for problem in sandbox_problems(&block.code) {
            problems.insert(format!(
                "{} (```{}, starting `{}`): {problem}, which the Playground cannot; mark the block `noplayground`",
                block.page,
                block.info,
                first_line.unwrap_or_default().trim()
            ));
        }
        for krate in crates_used(&block.code) {
            let at = format!(
                "{} (```{}, starting `{}`)",
                block.page,
                block.info,
                first_line.unwrap_or_default().trim()
            );
            match available.get(&krate) {
                None => {
                    problems.insert(format!(
                        "{at}: uses `{krate}`, which the Playground does not have; mark the block `noplayground`"
                    ));
                }
                Some((package, version)) => {
                    let ours = locked.get(package).map(Vec::as_slice).unwrap_or_default();
                    if !ours.is_empty() && !ours.iter().any(|v| compatible(v, version)) {
                        problems.insert(format!(
                            "{at}: the Playground has {package} {version}, the book is tested with {ours:?}"
                        ));
                    }
                }
            }
        }
    }
    eprintln!(
        "{} blocks with a Run button, all checked against {} Playground crates",
        blocks.len(),
        available.len()
    );
    assert!(
        problems.is_empty(),
        "listings with a Run button that would fail on the Playground:\n  {}",
        problems.into_iter().collect::<Vec<_>>().join("\n  ")
    );
}

#[test]
fn the_crate_list_is_the_playgrounds() {
    let crates = playground_crates();
    // The crates this book's runnable listings rely on, so a truncated copy is noticed.
    for id in [
        "tokio",
        "rayon",
        "crossbeam_channel",
        "parking_lot",
        "futures",
    ] {
        assert!(crates.contains_key(id), "{id} is missing from the list");
    }
    assert!(crates.len() > 300, "the Playground offers ~500 crates");
}

#[test]
fn crate_names_are_read_from_paths_not_from_local_names() {
    let code = r#"
# use std::sync::{mpsc, Arc};
use tokio_util::sync::CancellationToken;
use ::rayon::prelude::*;
mod net { pub fn f() {} }
#[tokio::main]
async fn main() {
    // parking_lot::Mutex in a comment is not a use
    let s = "crossbeam::channel in a string";
    let (tx, rx) = mpsc::channel::<u8>();
    net::f();
    let n = u64::MAX;
    std::thread::spawn(|| {});
    let _ = futures::future::ready(1);
    #[cfg(test)]
    mod tests {
        use book_support::run;
    }
    let v = [1u64].iter().copied().sum::<u64>() + size_of::<u32>() as u64;
}
"#;
    assert_eq!(
        crates_used(code).into_iter().collect::<Vec<_>>(),
        ["futures", "rayon", "tokio", "tokio_util"]
    );
}

#[test]
fn starting_a_process_is_found_outside_test_code_only() {
    let spawns =
        "use std::process::Command;\nfn main() { Command::new(std::env::current_exe().unwrap()); }";
    assert_eq!(sandbox_problems(spawns), ["starts a process"]);
    let test_only =
        "fn main() {}\n#[cfg(test)]\nmod tests { fn t() { std::process::Command::new(\"x\"); } }";
    assert!(sandbox_problems(test_only).is_empty());
}

#[test]
fn versions_are_compared_as_cargo_does() {
    assert!(compatible("1.48.0", "1.53.1"));
    assert!(compatible("0.12.5", "0.12.1"));
    assert!(!compatible("0.12.28", "0.13.4"));
    assert!(!compatible("1.0.0", "2.0.0"));
}

//! Expands the book exactly as mdBook does and hands every chapter to rustdoc.
//!
//! 1. Checks every `{{#include}}` / `{{#rustdoc_include}}` in `src/` against the file
//!    and the `ANCHOR:` it names. mdBook only logs a missing file or anchor and renders
//!    an empty block, so this is what makes a broken include fail `cargo test`.
//! 2. Refuses a line break inside a Japanese paragraph: Chromium renders it as a space.
//! 3. Loads the book with `mdbook-driver` and runs its preprocessors, so the code is
//!    the code a reader sees (hidden `# ` lines included, as the Playground gets it).
//! 4. Fails on anything the expansion left behind (`{{#`), on empty or unclosed code blocks,
//!    on fences without a language and on indented code blocks (rustdoc would run those as
//!    Rust).
//! 5. Builds and runs each program once: a listing whose output is checked by its drift test
//!    (`output.txt`) or a session recording is run there, so its block here is `no_run`
//!    (still compiled with the book's dependencies). A page often shows one listing in
//!    several parts, each expanding to the whole program: later parts are left out (made
//!    `text`, as are the `ignore` blocks). Only the doctest copy changes; the page is unchanged.
//! 6. Writes each chapter to `OUT_DIR/chapters/` and a `chapters.rs` that attaches it
//!    as the doc comment of a module; `tests/snippets/lib.rs` includes that, and
//!    `cargo test` runs every ```` ```rust ```` block as a doctest.
//!
//! Code blocks and directives are read by `book-markdown` (pulldown-cmark, as mdBook).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::env;
use std::fs;
use std::path::{Component, Path, PathBuf};

use book_markdown::{CodeBlock, code_blocks, directives, japanese_line_breaks, rewrite_info};
use mdbook_driver::MDBook;
use mdbook_driver::builtin_renderers::MarkdownRenderer;

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    for watched in ["book.toml", "src", "listings", "theme"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let mut errors = Vec::new();
    let src = root.join("src");
    let run_elsewhere = listings_run_elsewhere(&root);
    // per page: for each code block in the source, the listing it shows if that listing runs elsewhere
    let mut compile_only: HashMap<PathBuf, Vec<bool>> = HashMap::new();
    for page in markdown_files(&src) {
        let text = fs::read_to_string(&page).unwrap();
        let rel = page.strip_prefix(&src).unwrap().to_path_buf();
        check_includes(&page, &text, &mut errors);
        for brk in japanese_line_breaks(&text) {
            errors.push(format!(
                "{}:{}: a line break inside a Japanese paragraph ({}) renders as a space in \
                 Chromium; join the lines: one paragraph or list item is one source line",
                page.display(),
                brk.line,
                brk.context
            ));
        }
        let dir = page.parent().unwrap();
        let flags = code_blocks(&text)
            .iter()
            .map(|block| {
                block.lang() == "rust"
                    && shown_listings(dir, &block.body)
                        .iter()
                        .any(|l| run_elsewhere.contains(l))
            })
            .collect();
        compile_only.insert(rel, flags);
    }

    let book =
        MDBook::load(&root).unwrap_or_else(|e| panic!("mdBook could not load the book: {e:#}"));
    let (book, _) = book
        .preprocess_book(&MarkdownRenderer::new())
        .unwrap_or_else(|e| panic!("mdBook preprocessing failed: {e:#}"));

    let mut chapters = BTreeMap::new();
    let mut programs_seen = HashMap::new();
    for chapter in book.chapters() {
        let Some(path) = &chapter.path else { continue };
        check_expanded(path, &chapter.content, &mut errors);
        let flags = compile_only.get(path).cloned().unwrap_or_default();
        let expanded_blocks = code_blocks(&chapter.content).len();
        if !flags.is_empty() && flags.len() != expanded_blocks {
            errors.push(format!(
                "src/{}: {} code blocks in the source but {expanded_blocks} after expansion \
                 (does an include bring in a code fence?)",
                path.display(),
                flags.len()
            ));
            continue;
        }
        // Module names must be unique identifiers that start with a letter.
        let module = format!(
            "page_{}",
            path.with_extension("")
                .to_string_lossy()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        chapters.insert(
            module,
            doctest_copy(&chapter.content, &flags, &mut programs_seen),
        );
    }

    if !errors.is_empty() {
        panic!(
            "the book has {} problem(s):\n  {}",
            errors.len(),
            errors.join("\n  ")
        );
    }

    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("chapters");
    fs::create_dir_all(&out).unwrap();
    let mut index = String::new();
    for (module, content) in &chapters {
        let file = out.join(format!("{module}.md"));
        write_if_changed(&file, content);
        index.push_str(&format!(
            "#[doc = include_str!(\"{module}.md\")]\npub mod {module} {{}}\n"
        ));
    }
    write_if_changed(&out.join("chapters.rs"), &index);
}

/// Every `.md` file under `dir`, sorted.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(markdown_files(&path));
        } else if path.extension().is_some_and(|e| e == "md") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The listing crates (`listings/<section>/<name>`, relative to the root) whose program is
/// run by a test of its own: a drift test (`output.txt`) or a session recording.
fn listings_run_elsewhere(root: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let sections = fs::read_dir(root.join("listings")).unwrap();
    for section in sections.flatten() {
        let Ok(listings) = fs::read_dir(section.path()) else {
            continue;
        };
        for listing in listings.flatten() {
            let dir = listing.path();
            if dir.join("output.txt").exists()
                || tests_mention(&dir.join("tests"), "assert_matches_recording")
            {
                found.insert(dir.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    found
}

/// Whether any `.rs` file under `dir` contains `needle`.
fn tests_mention(dir: &Path, needle: &str) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            tests_mention(&path, needle)
        } else {
            path.extension().is_some_and(|x| x == "rs")
                && fs::read_to_string(&path).is_ok_and(|t| t.contains(needle))
        }
    })
}

/// The listing crates (relative to the root) that the directives in a block's source include.
fn shown_listings(page_dir: &Path, body: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    directives(body)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            let file = normalize(&page_dir.join(&d.path));
            let rel = file.strip_prefix(root).ok()?;
            let parts: Vec<_> = rel.components().take(3).collect();
            (parts.len() == 3 && parts[0].as_os_str() == "listings")
                .then(|| parts.iter().collect::<PathBuf>())
        })
        .collect()
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Checks that each include directive names a file that exists and, when it names
/// an anchor, that the file has `ANCHOR: name` and `ANCHOR_END: name`.
fn check_includes(page: &Path, text: &str, errors: &mut Vec<String>) {
    let dir = page.parent().unwrap();
    for directive in directives(text) {
        let directive = match directive {
            Ok(d) => d,
            Err(line) => {
                errors.push(format!("{}:{line}: unterminated `{{{{#`", page.display()));
                continue;
            }
        };
        if !["include", "rustdoc_include", "playground"].contains(&directive.kind.as_str()) {
            continue;
        }
        let (kind, file) = (&directive.kind, &directive.path);
        let at = format!("{}:{}", page.display(), directive.line);
        let Ok(included) = fs::read_to_string(dir.join(file)) else {
            errors.push(format!("{at}: `{kind}` names a missing file `{file}`"));
            continue;
        };
        if let Some(anchor) = &directive.anchor {
            let has = |marker: &str| {
                included.lines().any(|l| {
                    l.split_once(marker)
                        .is_some_and(|(_, name)| name.trim() == anchor)
                })
            };
            if !has("ANCHOR:") || !has("ANCHOR_END:") {
                errors.push(format!("{at}: `{file}` has no anchor `{anchor}`"));
            }
        }
    }
}

/// Checks a chapter after mdBook's preprocessors ran.
fn check_expanded(path: &Path, content: &str, errors: &mut Vec<String>) {
    for (n, line) in content.lines().enumerate() {
        if line.contains("{{#") {
            errors.push(format!(
                "src/{}: line {}: directive left unexpanded: {}",
                path.display(),
                n + 1,
                line.trim()
            ));
        }
    }
    for block in code_blocks(content) {
        let at = format!("src/{}: line {}", path.display(), block.line);
        if !block.fenced {
            errors.push(format!(
                "{at}: indented code block (rustdoc would run it as Rust); use a fence with a language"
            ));
        } else if block.info.trim().is_empty() {
            errors.push(format!(
                "{at}: code fence without a language (use `text`, `console`, `rust`, ...)"
            ));
        }
        if !block.closed {
            errors.push(format!("{at}: code block never closed"));
        } else if block.body.trim().is_empty() {
            errors.push(format!("{at}: empty code block (a missing anchor?)"));
        }
    }
}

/// The chapter as the doctests get it. `compile_only[i]` says that the `i`-th code block
/// shows a listing whose program runs in its own test (drift test or session): it becomes
/// `no_run`. A program already tested on an earlier block (parts of one listing) is left out,
/// unless this block would run a program that so far was only compiled. Blocks left out, and
/// the `ignore` blocks, become `text`: with edition 2024, rustdoc builds one merged binary for
/// its ignored tests (~0.5 s for nothing).
fn doctest_copy(content: &str, compile_only: &[bool], seen: &mut HashMap<String, bool>) -> String {
    let blocks = code_blocks(content);
    let mut new_info: HashMap<usize, String> = HashMap::new();
    for (i, block) in blocks.iter().enumerate() {
        if block.lang() != "rust" {
            continue;
        }
        if block.has("ignore") {
            // Not a doctest: as `text`, rustdoc does not even build an empty harness for it.
            new_info.insert(block.span.start, "text".to_owned());
            continue;
        }
        let tested = !block.has("compile_fail");
        let mut info = block.info.clone();
        if tested && compile_only.get(i).copied().unwrap_or(false) && !block.has("no_run") {
            info.push_str(",no_run");
        }
        let runs = tested && !info.split(',').any(|a| a.trim() == "no_run");
        let program = program_text(&block.body);
        let duplicate = tested
            && match seen.get(&program) {
                Some(&ran) => ran || !runs,
                None => false,
            };
        if duplicate {
            info = "text".to_owned();
        } else if tested {
            seen.insert(program, runs);
        }
        if info != block.info {
            new_info.insert(block.span.start, info);
        }
    }
    rewrite_info(content, |block: &CodeBlock| {
        new_info.get(&block.span.start).cloned()
    })
}

/// The program a block compiles to: rustdoc's hidden-line marker (`# `) removed, so two
/// parts of one listing (which hide different lines) compare equal.
fn program_text(body: &str) -> String {
    body.lines()
        .map(|line| {
            let t = line.trim_start();
            if t == "#" {
                ""
            } else {
                t.strip_prefix("# ").unwrap_or(line)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn write_if_changed(path: &Path, content: &str) {
    if fs::read_to_string(path).is_ok_and(|old| old == content) {
        return;
    }
    fs::write(path, content).unwrap();
}

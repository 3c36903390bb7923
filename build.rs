//! Expands the book exactly as mdBook does and hands every chapter to rustdoc.
//!
//! 1. Checks every `{{#include}}` / `{{#rustdoc_include}}` in `src/` against the file
//!    and the `ANCHOR:` it names. mdBook only logs a missing file or anchor and renders
//!    an empty block, so this is what makes a broken include fail `cargo test`.
//! 2. Loads the book with `mdbook-driver` and runs its preprocessors, so the code is
//!    the code a reader sees (hidden `# ` lines included, as the Playground gets it).
//! 3. Fails on anything the expansion left behind (`{{#`), on empty code blocks and on
//!    fences without a language (rustdoc would treat those as Rust).
//! 4. Tests each program once: a page often shows one listing in several parts, and each
//!    part expands to the whole program. Later blocks with the same program are `ignore`d in
//!    the doctest copy (the page itself is unchanged).
//! 5. Writes each chapter to `OUT_DIR/chapters/` and a `chapters.rs` that attaches it
//!    as the doc comment of a module; `tests/snippets/lib.rs` includes that, and
//!    `cargo test` runs every ```` ```rust ```` block as a doctest.

use std::collections::{BTreeMap, HashMap};
use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use mdbook_driver::MDBook;
use mdbook_driver::builtin_renderers::MarkdownRenderer;

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    for watched in ["book.toml", "src", "listings", "theme"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let mut errors = Vec::new();
    let src = root.join("src");
    for page in markdown_files(&src) {
        let text = fs::read_to_string(&page).unwrap();
        check_includes(&page, &text, &mut errors);
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
        // Module names must be unique identifiers that start with a letter.
        let module = format!(
            "page_{}",
            path.with_extension("")
                .to_string_lossy()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        chapters.insert(
            module,
            run_each_program_once(&chapter.content, &mut programs_seen),
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

/// Checks that each include directive names a file that exists and, when it names
/// an anchor, that the file has `ANCHOR: name` and `ANCHOR_END: name`.
fn check_includes(page: &Path, text: &str, errors: &mut Vec<String>) {
    let dir = page.parent().unwrap();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("{{#") {
            let after = &rest[start + 3..];
            let Some(end) = after.find("}}") else {
                errors.push(format!(
                    "{}:{}: unterminated `{{{{#`",
                    page.display(),
                    n + 1
                ));
                break;
            };
            let directive = &after[..end];
            rest = &after[end + 2..];
            let mut parts = directive.split_whitespace();
            let (Some(kind), Some(target)) = (parts.next(), parts.next()) else {
                continue;
            };
            if !["include", "rustdoc_include", "playground"].contains(&kind) {
                continue;
            }
            let (file, anchor) = match target.split_once(':') {
                Some((file, sel))
                    if !sel.is_empty() && !sel.starts_with(|c: char| c.is_ascii_digit()) =>
                {
                    (file, Some(sel))
                }
                Some((file, _)) => (file, None),
                None => (target, None),
            };
            let at = format!("{}:{}", page.display(), n + 1);
            let Ok(included) = fs::read_to_string(dir.join(file)) else {
                errors.push(format!("{at}: `{kind}` names a missing file `{file}`"));
                continue;
            };
            if let Some(anchor) = anchor {
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
}

/// Checks a chapter after mdBook's preprocessors ran.
fn check_expanded(path: &Path, content: &str, errors: &mut Vec<String>) {
    let mut fence: Option<(usize, String, bool)> = None; // (line, marker, has content)
    for (n, line) in content.lines().enumerate() {
        let at = format!("src/{}: line {}", path.display(), n + 1);
        if line.contains("{{#") {
            errors.push(format!("{at}: directive left unexpanded: {}", line.trim()));
        }
        let trimmed = line.trim_start();
        match &mut fence {
            None => {
                if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                    let marker: String = trimmed
                        .chars()
                        .take_while(|&c| c == '`' || c == '~')
                        .collect();
                    let info = trimmed[marker.len()..].trim();
                    if info.is_empty() {
                        errors.push(format!(
                            "{at}: code fence without a language (use `text`, `console`, `rust`, ...)"
                        ));
                    }
                    fence = Some((n + 1, marker, false));
                }
            }
            Some((_, marker, has_content)) => {
                if trimmed.starts_with(marker.as_str())
                    && trimmed
                        .trim_start_matches(marker.as_str())
                        .trim()
                        .is_empty()
                {
                    if !*has_content {
                        errors.push(format!("{at}: empty code block (a missing anchor?)"));
                    }
                    fence = None;
                } else if !line.trim().is_empty() {
                    *has_content = true;
                }
            }
        }
    }
    if let Some((start, _, _)) = fence {
        errors.push(format!(
            "src/{}: line {start}: code block never closed",
            path.display()
        ));
    }
}

/// Leaves each program to the doctests once: a page often shows one listing in several
/// parts, and each part expands to the whole program (the rest as hidden lines). The first
/// block of a program is tested; later blocks with the same program are marked `ignore` in
/// the doctest copy (the page itself is unchanged), unless they would run a program that so
/// far was only compiled.
fn run_each_program_once(content: &str, seen: &mut HashMap<String, bool>) -> String {
    let mut out = String::with_capacity(content.len());
    let mut lines = content.split_inclusive('\n');
    while let Some(line) = lines.next() {
        let info = line.trim_start().strip_prefix("```").map(str::trim);
        let Some(info) = info.filter(|i| i.split(',').next() == Some("rust")) else {
            out.push_str(line);
            continue;
        };
        let mut body = String::new();
        let mut closing = String::new();
        for line in lines.by_ref() {
            if line.trim() == "```" {
                closing = line.to_string();
                break;
            }
            body.push_str(line);
        }
        let attrs: Vec<&str> = info.split(',').map(str::trim).collect();
        let tested = !attrs.iter().any(|a| ["ignore", "compile_fail"].contains(a));
        let runs = tested && !attrs.contains(&"no_run");
        let duplicate = tested
            && match seen.get(&program_text(&body)) {
                Some(&ran) => ran || !runs,
                None => false,
            };
        if duplicate {
            out.push_str(&line.replacen(info, &format!("{info},ignore"), 1));
        } else {
            if tested {
                seen.insert(program_text(&body), runs);
            }
            out.push_str(line);
        }
        out.push_str(&body);
        out.push_str(&closing);
    }
    out
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

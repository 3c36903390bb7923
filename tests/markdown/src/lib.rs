//! The one reader of the book's markdown, shared by `build.rs`, the xtask and the tests.
//!
//! Code blocks are found by pulldown-cmark with the options mdBook uses, so what counts
//! as a fence here is what mdBook renders as one (```` ``` ````, `~~~`, longer fences,
//! indented fences inside lists). mdBook's `{{#…}}` directives are not markdown: mdBook
//! finds them in the raw text, and so does [`directives`].

use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

/// The markdown extensions mdBook enables (`mdbook-markdown`).
pub fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
}

/// A code block of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBlock {
    /// The info string (`rust,no_run`); empty for a fence without one and for an indented block.
    pub info: String,
    /// Whether the block is fenced (```` ``` ```` or `~~~`) rather than indented.
    pub fenced: bool,
    /// The code, as a reader sees it.
    pub body: String,
    /// The whole block in the page, fences included, up to and including the line break that
    /// ends its last line.
    pub span: Range<usize>,
    /// Where the info string is in the page (empty range right after the fence if none).
    pub info_span: Range<usize>,
    /// The line (1-based) the block starts on.
    pub line: usize,
    /// Whether a closing fence ends the block (an unclosed fence runs to the end of its
    /// container and swallows the rest of the page).
    pub closed: bool,
}

impl CodeBlock {
    /// The language: the first word of the info string (`rust` in `rust,no_run`).
    pub fn lang(&self) -> &str {
        self.attrs().next().unwrap_or("")
    }

    /// The words of the info string, split at commas and spaces (`rust`, `no_run`).
    pub fn attrs(&self) -> impl Iterator<Item = &str> {
        self.info
            .split([',', ' ', '\t'])
            .map(str::trim)
            .filter(|a| !a.is_empty())
    }

    /// Whether the info string has the word `attr`.
    pub fn has(&self, attr: &str) -> bool {
        self.attrs().any(|a| a == attr)
    }
}

/// The line (1-based) of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// Every code block of `markdown`, in order.
pub fn code_blocks(markdown: &str) -> Vec<CodeBlock> {
    let mut blocks = Vec::new();
    let mut current: Option<CodeBlock> = None;
    for (event, range) in Parser::new_ext(markdown, options()).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let (info, fenced) = match &kind {
                    CodeBlockKind::Fenced(info) => (info.to_string(), true),
                    CodeBlockKind::Indented => (String::new(), false),
                };
                let info_span = if fenced {
                    info_span(markdown, range.start)
                } else {
                    range.start..range.start
                };
                let mut span = range.clone();
                if !markdown[..span.end].ends_with('\n') && markdown[span.end..].starts_with('\n') {
                    span.end += 1;
                }
                current = Some(CodeBlock {
                    info,
                    fenced,
                    body: String::new(),
                    span,
                    info_span,
                    line: line_of(markdown, range.start),
                    closed: !fenced || has_closing_fence(&markdown[range.clone()]),
                });
            }
            Event::Text(text) => {
                if let Some(block) = &mut current {
                    block.body.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => blocks.extend(current.take()),
            _ => {}
        }
    }
    blocks
}

/// The info string on the opening fence line that starts at or after `start`.
fn info_span(markdown: &str, start: usize) -> Range<usize> {
    let line_end = markdown[start..]
        .find('\n')
        .map_or(markdown.len(), |i| start + i);
    let line = &markdown[start..line_end];
    let fence_start = line.find(['`', '~']).unwrap_or(0);
    let marker = line.as_bytes()[fence_start];
    let after_fence = fence_start
        + line[fence_start..]
            .bytes()
            .take_while(|&b| b == marker)
            .count();
    let rest = &line[after_fence..];
    let leading = rest.len() - rest.trim_start().len();
    let from = start + after_fence + leading;
    from..start + after_fence + rest.trim_end().len()
}

/// Whether the text of a fenced block ends with a closing fence as long as the opening one.
fn has_closing_fence(block: &str) -> bool {
    let first = block.lines().next().unwrap_or("").trim_start();
    let marker = first.chars().next().unwrap_or('`');
    let len = first.chars().take_while(|&c| c == marker).count();
    let mut lines = block.lines();
    lines.next();
    lines.next_back().is_some_and(|last| {
        let last = last.trim();
        last.chars().take_while(|&c| c == marker).count() >= len
            && last.chars().all(|c| c == marker)
    })
}

/// Rewrites `markdown`, replacing each code block for which `f` returns `Some` with that
/// text (the whole block, fences included). Everything else is left byte for byte.
pub fn replace_code_blocks(
    markdown: &str,
    mut f: impl FnMut(&CodeBlock) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut copied = 0;
    for block in code_blocks(markdown) {
        if let Some(replacement) = f(&block) {
            out.push_str(&markdown[copied..block.span.start]);
            out.push_str(&replacement);
            copied = block.span.end;
        }
    }
    out.push_str(&markdown[copied..]);
    out
}

/// Rewrites `markdown`, replacing the info string of each fenced block for which `f`
/// returns `Some` (e.g. `rust` → `rust,no_run`). Everything else is left byte for byte.
pub fn rewrite_info(markdown: &str, mut f: impl FnMut(&CodeBlock) -> Option<String>) -> String {
    let mut out = String::with_capacity(markdown.len() + 64);
    let mut copied = 0;
    for block in code_blocks(markdown) {
        if !block.fenced {
            continue;
        }
        if let Some(info) = f(&block) {
            out.push_str(&markdown[copied..block.info_span.start]);
            out.push_str(&info);
            copied = block.info_span.end;
        }
    }
    out.push_str(&markdown[copied..]);
    out
}

/// An mdBook directive in the raw text of a page: `{{#include path:anchor}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// `include`, `rustdoc_include`, `playground`, `title`, …
    pub kind: String,
    /// The path as written (relative to the page), without `:anchor` or `:lines`.
    pub path: String,
    /// The anchor name after `:`, if the selector is a name rather than line numbers.
    pub anchor: Option<String>,
    /// The line (1-based) the directive is on.
    pub line: usize,
}

/// Every `{{#…}}` directive of a page, found in the raw text as mdBook finds them
/// (escaped `\{{#…}}` excluded). An unterminated `{{#` is reported as `Err(line)`.
pub fn directives(markdown: &str) -> Vec<Result<Directive, usize>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = markdown[from..].find("{{#") {
        let start = from + i;
        from = start + 3;
        if start > 0 && markdown.as_bytes()[start - 1] == b'\\' {
            continue;
        }
        let line = line_of(markdown, start);
        let Some(end) = markdown[from..].find("}}") else {
            found.push(Err(line));
            break;
        };
        let inner = &markdown[from..from + end];
        from += end + 2;
        let mut words = inner.split_whitespace();
        let kind = words.next().unwrap_or_default().to_string();
        let target = words.next().unwrap_or_default();
        let (path, anchor) = match target.split_once(':') {
            Some((path, sel))
                if !sel.is_empty() && !sel.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                (path, Some(sel.to_string()))
            }
            Some((path, _)) => (path, None),
            None => (target, None),
        };
        found.push(Ok(Directive {
            kind,
            path: path.to_string(),
            anchor,
            line,
        }));
    }
    found
}

/// Whether `c` is a Japanese (CJK) character or full-width punctuation: a line break next
/// to one inside a paragraph renders as a visible space in Chromium.
pub fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3000}'..='\u{303F}'   // CJK symbols and punctuation: 、。「」
        | '\u{3040}'..='\u{30FF}' // hiragana, katakana
        | '\u{31F0}'..='\u{31FF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}' // kanji
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FF00}'..='\u{FFEF}' // full-width forms: （）！？：
    )
}

/// A line break inside a paragraph, list item or heading with a Japanese character on
/// either side (in the source; code blocks, HTML blocks and hard breaks do not count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JapaneseLineBreak {
    /// The line (1-based) that ends with the break.
    pub line: usize,
    /// A few characters on each side, `…前|後…`.
    pub context: String,
}

/// Every soft line break of `markdown` next to a Japanese character.
pub fn japanese_line_breaks(markdown: &str) -> Vec<JapaneseLineBreak> {
    let mut found = Vec::new();
    for (event, range) in Parser::new_ext(markdown, options()).into_offset_iter() {
        if event != Event::SoftBreak {
            continue;
        }
        let before = markdown[..range.start].trim_end_matches([' ', '\t', '\r']);
        let after = markdown[range.end..].trim_start_matches([' ', '\t', '>']);
        let (Some(b), Some(a)) = (before.chars().next_back(), after.chars().next()) else {
            continue;
        };
        if is_cjk(b) || is_cjk(a) {
            let tail: String = {
                let v: Vec<char> = before.chars().rev().take(8).collect();
                v.into_iter().rev().collect()
            };
            let head: String = after.chars().take_while(|&c| c != '\n').take(8).collect();
            found.push(JapaneseLineBreak {
                line: line_of(markdown, range.start),
                context: format!("…{tail}|{head}…"),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_of_every_kind_are_code_blocks() {
        let md = "本文\n\n```rust,no_run\nfn main() {}\n```\n\n~~~~console\n$ cargo run\n```\nnot the end\n~~~~\n\n- 項目\n\n  ```text\n  中\n  ```\n\n本文\n\n    indented\n";
        let blocks = code_blocks(md);
        let infos: Vec<&str> = blocks.iter().map(|b| b.info.as_str()).collect();
        assert_eq!(infos, ["rust,no_run", "console", "text", ""]);
        assert_eq!(blocks[0].body, "fn main() {}\n");
        assert_eq!(blocks[0].lang(), "rust");
        assert!(blocks[0].has("no_run"));
        assert_eq!(blocks[1].body, "$ cargo run\n```\nnot the end\n");
        assert_eq!(blocks[2].body, "中\n");
        assert!(!blocks[3].fenced);
        assert_eq!(blocks[1].line, 7);
        assert!(blocks.iter().all(|b| b.closed));
        assert_eq!(&md[blocks[0].info_span.clone()], "rust,no_run");
    }

    #[test]
    fn an_unclosed_fence_is_reported() {
        let blocks = code_blocks("```rust\nfn main() {}\n");
        assert!(!blocks[0].closed);
        assert!(code_blocks("```\n```\n")[0].closed);
    }

    #[test]
    fn info_strings_are_rewritten_in_place() {
        let md = "a\n```rust\nx\n```\n```rust,ignore\ny\n```\n~~~text\nz\n~~~\n";
        let out = rewrite_info(md, |b| {
            (b.lang() == "rust").then(|| format!("{},no_run", b.info))
        });
        assert_eq!(
            out,
            "a\n```rust,no_run\nx\n```\n```rust,ignore,no_run\ny\n```\n~~~text\nz\n~~~\n"
        );
        let replaced = replace_code_blocks(md, |b| (b.lang() == "text").then(|| "<img>\n".into()));
        assert!(replaced.ends_with("```\n<img>\n"), "{replaced}");
    }

    #[test]
    fn directives_are_found_with_their_anchor() {
        let md = "x\n{{#rustdoc_include ../listings/a/b/src/main.rs:main}}\n{{#include o.txt}} \\{{#include no}}\n{{#include f.rs:3:5}}\n";
        let d: Vec<Directive> = directives(md).into_iter().map(Result::unwrap).collect();
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].kind, "rustdoc_include");
        assert_eq!(d[0].path, "../listings/a/b/src/main.rs");
        assert_eq!(d[0].anchor.as_deref(), Some("main"));
        assert_eq!(d[1].line, 3);
        assert_eq!(d[2].anchor, None);
        assert_eq!(directives("{{#include x"), [Err(1)]);
    }

    #[test]
    fn line_breaks_inside_japanese_paragraphs_are_found() {
        let md = "一行目です。\n二行目です。\n\nLatin words\nwrap freely.\n\n- 項目の\n  続き\n\n```text\n日本\n語\n```\n\n`code`と\n`code`\n";
        let found = japanese_line_breaks(md);
        let lines: Vec<usize> = found.iter().map(|b| b.line).collect();
        assert_eq!(lines, [1, 7, 15], "{found:?}");
        assert_eq!(found[0].context, "…一行目です。|二行目です。…");
    }
}

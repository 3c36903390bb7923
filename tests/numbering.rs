//! Listing numbers: the captions run リスト19-1, 19-2, … without a gap in the reading order
//! of SUMMARY.md, every 「リスト19-N」 in the prose names a caption that exists, and the
//! solution pages number their own listings 解答リストK-1, K-2, … the same way. Output blocks are
//! introduced by a sentence, not placed straight after a caption.

use std::fs;
use std::path::Path;

use regex::Regex;

/// The pages in reading order, as SUMMARY.md lists them.
fn pages_in_order(src: &Path) -> Vec<String> {
    let summary = fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let link = Regex::new(r"\]\(([^)#]+\.md)\)").unwrap();
    link.captures_iter(&summary)
        .map(|c| c[1].to_string())
        .collect()
}

#[test]
fn listing_numbers_run_in_reading_order_and_every_reference_exists() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let caption = Regex::new(r#"<span class="caption">(解答)?リスト(\d+)-(\S+?):"#).unwrap();
    let reference = Regex::new(r"(解答)?リスト(\d+)-([0-9A-Za-z]+)").unwrap();

    let mut problems = Vec::new();
    let mut captions = Vec::new(); // (label, page)
    let mut expected_chapter_listing = 1;
    let mut solution_counters = std::collections::HashMap::new();
    for page in pages_in_order(&src) {
        let text = fs::read_to_string(src.join(&page)).unwrap();
        for c in caption.captures_iter(&text) {
            let solution = c.get(1).is_some();
            let (major, minor) = (&c[2], &c[3]);
            let label = format!(
                "{}リスト{major}-{minor}",
                if solution { "解答" } else { "" }
            );
            let expected = if solution {
                let n = solution_counters.entry(major.to_string()).or_insert(1);
                let e = *n;
                *n += 1;
                e
            } else {
                if major != "19" {
                    problems.push(format!("{page}: {label} is not numbered in chapter 19"));
                }
                let e = expected_chapter_listing;
                expected_chapter_listing += 1;
                e
            };
            if minor != expected.to_string() {
                problems.push(format!(
                    "{page}: caption {label} should be {}リスト{major}-{expected} (reading order of SUMMARY.md)",
                    if solution { "解答" } else { "" }
                ));
            }
            if captions.iter().any(|(l, _)| *l == label) {
                problems.push(format!("{page}: {label} is used by two captions"));
            }
            captions.push((label, page.clone()));
        }
    }
    assert!(
        expected_chapter_listing > 90,
        "found only {} captions: is the caption format still <span class=\"caption\">リスト19-N: …?",
        expected_chapter_listing - 1
    );

    for page in pages_in_order(&src) {
        let text = fs::read_to_string(src.join(&page)).unwrap();
        for line in text.lines().filter(|l| !l.contains("class=\"caption\"")) {
            for r in reference.captures_iter(line) {
                // 問題のページの「問題リストK-N」は、この番号付けの外です
                if line[..r.get(0).unwrap().start()].ends_with("問題") {
                    continue;
                }
                let label = r[0].to_string();
                if !captions.iter().any(|(l, _)| *l == label) {
                    problems.push(format!("{page}: 「{label}」 names no caption"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every output block (```` ```console ````) is introduced by a sentence of its own, never
/// placed straight after a listing's caption (issue: 17 captions were followed by output).
#[test]
fn every_output_block_is_introduced_by_a_sentence() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut problems = Vec::new();
    for page in pages_in_order(&src) {
        let text = fs::read_to_string(src.join(&page)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.starts_with("```console") {
                continue;
            }
            let before = lines[..i].iter().rev().find(|l| !l.trim().is_empty());
            if before.is_some_and(|l| l.contains("class=\"caption\"")) {
                problems.push(format!("{page}:{}: output right after a caption", i + 1));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

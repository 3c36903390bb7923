//! ripgrepと同じ歩き方: `.gitignore`と隠しファイルを飛ばし、`--hidden`と`--no-ignore`で含めます。

use std::path::Path;

use crate::common::*;

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src, ".gitignore", b"node_modules/\n*.log\n/build\n");
    write(&src, "visible.txt", b"a\r\n");
    write(&src, "docs/visible.md", b"b\r\n");
    write(&src, "node_modules/pkg/index.js", b"c\r\n");
    write(&src, "debug.log", b"d\r\n");
    write(&src, "build/out.txt", b"e\r\n");
    write(&src, ".git/config", b"f\r\n");
    write(&src, ".hidden/notes.txt", b"g\r\n");
    dir
}

fn paths(src: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["stats", src.to_str().unwrap()];
    args.extend(extra);
    let run = fileproc(&args);
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    run.records().into_keys().collect()
}

#[test]
fn gitignored_and_hidden_files_are_not_walked_by_default() {
    // gitのリポジトリでなくても`.gitignore`に従います（以前は`.git`も`node_modules`も歩いていました）。
    let dir = tree();
    let src = dir.path().join("src");
    assert_eq!(paths(&src, &[]), ["docs/visible.md", "visible.txt"]);
}

#[test]
fn hidden_and_no_ignore_bring_them_back() {
    let dir = tree();
    let src = dir.path().join("src");
    assert_eq!(
        paths(&src, &["--hidden"]),
        [
            ".git/config",
            ".gitignore",
            ".hidden/notes.txt",
            "docs/visible.md",
            "visible.txt"
        ]
    );
    assert_eq!(
        paths(&src, &["--no-ignore"]),
        [
            "build/out.txt",
            "debug.log",
            "docs/visible.md",
            "node_modules/pkg/index.js",
            "visible.txt"
        ]
    );
    assert_eq!(paths(&src, &["--hidden", "--no-ignore"]).len(), 8);
}

#[test]
fn in_place_leaves_ignored_files_alone() {
    let dir = tree();
    let src = dir.path().join("src");
    let run = fileproc(&["convert", "--in-place", src.to_str().unwrap()]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    assert_eq!(std::fs::read(src.join("visible.txt")).unwrap(), b"a\n");
    assert_eq!(
        std::fs::read(src.join("node_modules/pkg/index.js")).unwrap(),
        b"c\r\n"
    );
    assert_eq!(std::fs::read(src.join(".git/config")).unwrap(), b"f\r\n");
}

#[test]
fn max_size_skips_large_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src, "small.txt", &[b'a'; 1000]);
    write(&src, "large.txt", &[b'a'; 3000]);
    let run = fileproc(&["stats", src.to_str().unwrap(), "--max-size", "2KiB"]);
    let records = run.records();
    assert_eq!(records["small.txt"]["status"], "text");
    assert_eq!(records["large.txt"]["status"], "skipped");
    let reason = records["large.txt"]["reason"].as_str().unwrap();
    assert!(reason.contains("--max-size"), "{reason}");
    let run = fileproc(&["stats", src.to_str().unwrap(), "--max-size", "2 lightyears"]);
    assert_eq!(run.code(), Some(2));
}

//! 変換先と変換元が重なるときは、何も書かずに断ることを、本物の`fileproc`で確かめます。

use std::path::Path;

use crate::common::*;

/// 問題の報告にあった木: `a/b/x.txt`と`a/b/b/x.txt`
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a/b/x.txt", "外側\r\n".as_bytes());
    write(dir.path(), "a/b/b/x.txt", "内側\r\n".as_bytes());
    dir
}

/// `args`で起動すると、終了コード2で`message`を出し、1バイトも書かないこと
fn assert_refused(dir: &Path, args: &[&str], message: &str) {
    let before = snapshot(dir);
    let run = fileproc_in(dir, args);
    assert_eq!(run.code(), Some(2), "{args:?}: {}", run.stderr);
    assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    assert_eq!(run.stdout, "", "{args:?}");
    assert_eq!(snapshot(dir), before, "{args:?}");
}

#[test]
fn the_source_inside_the_destination_is_refused() {
    // 以前は`a/b/b/x.txt`を変換した結果で、変換元の`a/b/x.txt`を上書きし、終了コード0でした。
    let dir = tree();
    assert_refused(
        dir.path(),
        &["convert", "a/b", "a"],
        "変換元a/bが変換先aの中にあります",
    );
}

#[test]
fn the_destination_inside_the_source_or_the_same_directory_is_refused() {
    let dir = tree();
    assert_refused(
        dir.path(),
        &["convert", "a", "a/b/out"],
        "変換先a/b/outが変換元aの中にあります",
    );
    assert_refused(dir.path(), &["convert", "a/b", "a/b"], "の中にあります");
    assert_refused(
        dir.path(),
        &["convert", "a/b", "a/./b/../b/new"],
        "の中にあります",
    );
}

#[cfg(unix)]
#[test]
fn overlap_through_symlinks_is_refused() {
    let dir = tree();
    std::os::unix::fs::symlink("a/b", dir.path().join("link")).unwrap();
    // まだない変換先の親が、変換元を指すシンボリックリンク
    assert_refused(
        dir.path(),
        &["convert", "a", "link/new"],
        "変換先link/newが変換元aの中にあります",
    );
    // シンボリックリンクを通した変換元が、変換先の中にある
    assert_refused(
        dir.path(),
        &["convert", "link", "a"],
        "変換元linkが変換先aの中にあります",
    );
    // リンクの先で`..`をたどると、変換元の中に着く
    assert_refused(
        dir.path(),
        &["convert", "a/b", "link/../b/new"],
        "の中にあります",
    );
}

#[test]
fn separate_trees_are_still_converted() {
    let dir = tree();
    let run = fileproc_in(dir.path(), &["convert", "a/b", "out"]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/x.txt")).unwrap(),
        "外側\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/b/x.txt")).unwrap(),
        "内側\n"
    );
}

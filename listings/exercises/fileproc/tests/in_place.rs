//! `--in-place`で、元のファイルの性質（ハードリンク・持ち主・更新時刻）を保つことと、
//! 中断された実行の一時ファイルを次の実行が消すことを確かめます。
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, SystemTime};

use crate::common::*;

#[test]
fn files_with_several_hard_links_are_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src, "linked.txt", b"linked\r\n");
    write(&src, "plain.txt", b"plain\r\n");
    fs::hard_link(src.join("linked.txt"), dir.path().join("other-name.txt")).unwrap();

    let run = fileproc(&["convert", "--in-place", src.to_str().unwrap()]);
    assert_eq!(run.code(), Some(1), "{}", run.stderr);
    let records = run.records();
    assert_eq!(records["linked.txt"]["status"], "failed");
    let reason = records["linked.txt"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("ハードリンクが2個ある"), "{reason}");
    assert_eq!(fs::read(src.join("linked.txt")).unwrap(), b"linked\r\n");
    assert_eq!(fs::read(src.join("plain.txt")).unwrap(), b"plain\n");

    // --forceなら置き換える。このパスだけが新しいファイルになり、ほかの名前は元の中身のまま
    let run = fileproc(&["convert", "--in-place", "--force", src.to_str().unwrap()]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    assert_eq!(fs::read(src.join("linked.txt")).unwrap(), b"linked\n");
    assert_eq!(
        fs::read(dir.path().join("other-name.txt")).unwrap(),
        b"linked\r\n"
    );
}

#[test]
fn owner_mode_and_modification_time_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let path = src.join("chapter.txt");
    write(
        &src,
        "chapter.txt",
        &encode("第1章\r\n", encoding_rs::SHIFT_JIS),
    );
    let old = SystemTime::now() - Duration::from_secs(86_400);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    // rootで実行しているなら、ほかのユーザーのファイルにして、持ち主が保たれることも確かめます。
    // SAFETY: geteuidは引数を取らず、失敗もしません。
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        std::os::unix::fs::chown(&path, Some(12345), Some(23456)).unwrap();
    } else {
        eprintln!("not root: the owner is kept only when it is ours, which is not checked here");
    }
    let before = fs::metadata(&path).unwrap();

    let run = fileproc(&["convert", "--in-place", src.to_str().unwrap()]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    assert_eq!(run.statuses()["chapter.txt"], "converted");

    let after = fs::metadata(&path).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "第1章\n");
    assert_ne!(after.ino(), before.ino(), "replaced by rename");
    assert_eq!(after.mode() & 0o7777, 0o640);
    assert_eq!(after.modified().unwrap(), old);
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    if root {
        assert_eq!((after.uid(), after.gid()), (12345, 23456));
    }
}

#[test]
fn leftover_temporary_files_are_removed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src, "a.txt", b"a\r\n");
    // 中断された実行の残り（.gitignoreの`*.tmp`にも、隠しファイルであることにも関係なく探す）
    write(&src, ".gitignore", b"*.tmp\n");
    write(&src, ".fileproc-Xy12ab.tmp", b"half written\r\n");
    write(&src, "sub/.fileproc-Q9w8E7.tmp", b"half\r\n");
    // fileprocの名前の形をしていないファイルは、利用者のものなので消さない
    write(&src, ".fileproc-my-notes.tmp", b"mine\r\n");

    // --dry-runと--checkは何も書かないので、消しもしない
    let run = fileproc(&["convert", "--in-place", "--dry-run", src.to_str().unwrap()]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    assert!(src.join(".fileproc-Xy12ab.tmp").exists());

    let run = fileproc(&["convert", "--in-place", src.to_str().unwrap()]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    assert!(!src.join(".fileproc-Xy12ab.tmp").exists());
    assert!(!src.join("sub/.fileproc-Q9w8E7.tmp").exists());
    assert!(
        run.stderr
            .contains("前回の実行が残した一時ファイルを消しました"),
        "{}",
        run.stderr
    );
    assert_eq!(
        fs::read(src.join(".fileproc-my-notes.tmp")).unwrap(),
        b"mine\r\n"
    );
    assert_eq!(fs::read(src.join("a.txt")).unwrap(), b"a\n");
    // 一時ファイルは報告にも出ない
    assert_eq!(run.records().into_keys().collect::<Vec<_>>(), ["a.txt"]);
}

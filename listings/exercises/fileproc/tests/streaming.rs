//! 報告は終わったファイルから順に出ます。`kill -9`で止められても何を書き換えたかが残り、
//! Ctrl-C（SIGINT）では処理中の一時ファイルを片付けてから終わることを、本物の`fileproc`で確かめます。
#![cfg(unix)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};

use crate::common::*;

/// `--in-place`は1ファイルごとにfsyncするので、300個でも処理には0.1秒以上かかり、
/// 最初の報告が届いた時点では、まだ多くのファイルが残っています。
const FILES: usize = 300;

/// `--in-place`で起動し、最初の報告の行が届くまで待つ
fn start_in_place(src: &Path) -> (Child, BufReader<std::process::ChildStdout>, String) {
    let mut child = fileproc_command(src, &["convert", "--in-place", ".", "-j", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    (child, stdout, first)
}

/// 報告（パス→状態）と、木の中のファイルを照らし合わせる
fn check_tree(
    src: &Path,
    report: &str,
    input: &[u8],
    converted: &[u8],
) -> BTreeMap<String, String> {
    let statuses: BTreeMap<String, String> = report
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let path = value["path"].as_str().unwrap().to_string();
            if value["status"] == "failed" {
                assert_eq!(value["reason"], "中断したので、変換していません", "{path}");
            }
            (path, value["status"].as_str().unwrap().to_string())
        })
        .collect();
    for (rel, bytes) in snapshot(src) {
        let rel = rel.to_str().unwrap().to_string();
        if is_temp_name(rel.rsplit('/').next().unwrap()) {
            continue; // kill -9の後には残ることがある（次の実行が消す）
        }
        match statuses.get(&rel).map(String::as_str) {
            // 報告に「変換」とあるファイルは、必ず変換済み
            Some("converted") => assert_eq!(bytes, converted, "{rel}"),
            // 中断されたファイルは、元のまま
            Some("failed") => assert_eq!(bytes, input, "{rel}"),
            Some(status) => panic!("{rel}: {status}"),
            // 報告にないファイルは、元のままか、（報告を書く前に止められたなら）変換済み
            None => assert!(
                bytes == input || bytes == converted,
                "{rel} is half written"
            ),
        }
    }
    statuses
}

#[test]
fn a_killed_run_leaves_a_record_of_every_file_it_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (input, converted) = many_files(&src, FILES);

    let (mut child, mut stdout, first) = start_in_place(&src);
    assert!(!first.is_empty(), "no record before the end");
    // 以前は、すべてのファイルを処理し終えてから報告をまとめて書いていました。
    // 今は最初の行が届いた時点で、まだ処理の途中です。
    child.kill().unwrap(); // SIGKILL: 後片付けの機会はない
    child.wait().unwrap();
    let mut report = first;
    stdout.read_to_string(&mut report).unwrap();

    let statuses = check_tree(&src, &report, &input, &converted);
    assert!(
        statuses.len() < FILES,
        "all {FILES} files were done before the kill"
    );

    // 次の実行は、残った一時ファイルを消してから、残りを変換する
    let run = fileproc_in(&src, &["convert", "--in-place", "."]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    assert_no_temp_files(&src);
    for (rel, bytes) in snapshot(&src) {
        assert_eq!(bytes, converted, "{}", rel.display());
    }
}

#[test]
fn ctrl_c_stops_cleanly_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (input, converted) = many_files(&src, FILES);

    let (mut child, mut stdout, first) = start_in_place(&src);
    // SAFETY: 自分で起動した子プロセスにシグナルを送るだけです。
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let mut report = first;
    stdout.read_to_string(&mut report).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();

    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("中断しました"), "{stderr}");
    assert_no_temp_files(&src);
    let statuses = check_tree(&src, &report, &input, &converted);
    assert!(
        statuses.len() < FILES,
        "all {FILES} files were done before Ctrl-C"
    );
    // 中断で止まったときは、書き換えたファイルがすべて「変換」として報告にある
    let done = snapshot(&src).values().filter(|b| **b == converted).count();
    let reported = statuses.values().filter(|s| *s == "converted").count();
    assert_eq!(done, reported);
}

//! 本物の実行ファイルを動かし、3つの子プロセスがそれぞれ別のPIDで動いたことを確かめます。

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

const EXE: &str = env!("CARGO_BIN_EXE_process-basics");

/// `（PID: 123）`や`PID 123で`から数値を取り出します。
fn pid_in(line: &str, marker: &str) -> u32 {
    let rest = &line[line
        .find(marker)
        .unwrap_or_else(|| panic!("{marker}がない: {line}"))
        + marker.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("PIDがない: {line}"))
}

#[test]
fn three_children_run_with_their_own_pids_and_the_parent_waits_for_all() {
    let output = Command::new(EXE).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();

    let parent = pid_in(lines[0], "PID: ");
    let launched: BTreeSet<u32> = lines
        .iter()
        .filter(|l| l.contains("で起動しました"))
        .map(|l| pid_in(l, "PID "))
        .collect();
    let started: BTreeSet<u32> = lines
        .iter()
        .filter(|l| l.ends_with("開始"))
        .map(|l| pid_in(l, "PID: "))
        .collect();
    let finished: BTreeSet<u32> = lines
        .iter()
        .filter(|l| l.ends_with("完了") && l.contains("PID"))
        .map(|l| pid_in(l, "PID: "))
        .collect();

    assert_eq!(launched.len(), 3, "{stdout}");
    assert!(!launched.contains(&parent), "子のPIDが親と同じ: {stdout}");
    // 親が`Child::id()`で知ったPIDと、子が`process::id()`で名乗ったPIDは同じです。
    assert_eq!(started, launched, "{stdout}");
    assert_eq!(finished, launched, "{stdout}");
    // 親は全員の終わりを待ってから最後の行を出します。
    assert_eq!(lines.last(), Some(&"全プロセス完了"), "{stdout}");
}

#[test]
fn unknown_arguments_are_an_error_not_a_new_parent() {
    let output = Command::new(EXE).arg("wroker").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("使い方"));
    assert!(output.stdout.is_empty(), "子プロセスを起動してはいけません");
}

#[test]
fn the_three_children_run_at_the_same_time() {
    // 子はそれぞれ100・200・300ミリ秒眠ります。同時に動くので、全体は合計の600ミリ秒ではなく、
    // いちばん長い300ミリ秒に近い時間で終わります。
    let waits = [100, 200, 300].map(Duration::from_millis);
    book_support::assert_waits_overlap("3つの子プロセス", &waits, || {
        let output = Command::new(EXE).output().unwrap();
        assert!(output.status.success(), "{output:?}");
    });
}

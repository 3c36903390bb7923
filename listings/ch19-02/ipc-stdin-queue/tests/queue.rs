//! 本物の実行ファイルを動かし、送ったアイテムが子プロセスにすべて1回ずつ、順番どおりに届くことを確かめます。

use std::process::Command;

#[test]
fn every_item_reaches_the_child_once_in_order() {
    let output = Command::new(env!("CARGO_BIN_EXE_ipc-stdin-queue"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();

    let expected: Vec<String> = (0..5).map(|i| format!("Producer-item-{i}")).collect();
    let produced: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Producer 送信: "))
        .collect();
    let consumed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Consumer 受信: "))
        .collect();
    assert_eq!(produced, expected, "{stdout}");
    assert_eq!(consumed, expected, "{stdout}");
    assert!(
        stdout.contains("入力が閉じられたので終了します（5個）"),
        "{stdout}"
    );
    // 親は子の終了を待ってから最後の行を出します。
    assert_eq!(
        stdout.lines().last(),
        Some("Producer: 子プロセスの終了を確認しました")
    );
}

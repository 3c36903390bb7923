//! 本物の子プロセスで共有メモリを使い、本文の主張を確かめます:
//! 元のPythonと同じ処理は正確に[7, 8, 9, 10]になり、不可分な足し算は何回繰り返しても正確で、
//! 「読んでから書く」足し算は期待より大きくなることはなく、小さくなることがあります。

use std::process::Command;

fn numbers(s: &str) -> Vec<f64> {
    s.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().unwrap())
        .collect()
}

fn line<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("「{prefix}」の行がない:\n{stdout}"))
}

#[test]
fn the_processes_share_the_values_exactly_unless_they_read_then_write() {
    let output = Command::new(env!("CARGO_BIN_EXE_shm-mmap"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();

    assert_eq!(line(&stdout, "最終値: "), "3");
    assert_eq!(line(&stdout, "最終配列: "), "[7.0, 8.0, 9.0, 10.0]");

    let expected = numbers(line(&stdout, "期待する結果: "));
    let atomic = numbers(line(&stdout, "不可分な足し算（fetch_update）: "));
    let racy = numbers(line(&stdout, "読んでから書く足し算（load + store）: "));
    assert_eq!(expected.len(), 5, "{stdout}");
    assert_eq!(atomic, expected, "不可分な足し算で更新が失われました");
    // 値はどちらでも`fetch_add`なので正確です。
    assert_eq!(racy[0], expected[0]);
    // 配列は、失われた更新のぶんだけ小さくなることはあっても、大きくなることはありません。
    for (got, want) in racy[1..].iter().zip(&expected[1..]) {
        assert!(got <= want, "{got} > {want}");
    }
}

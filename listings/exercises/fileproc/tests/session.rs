//! 本文の「実行例」（`session.txt`）が、本物の実行と一致していることを確かめます。
//!
//! 例の木を一時ディレクトリに作り、そこで`fileproc`を実行して、端末に出るとおりの記録を作ります。
//! 時間や速度などの数値は実行のたびに変わるので無視し（`output.txt`の検査と同じ規則）、文言は比べます。
//! 報告は処理の終わった順に出るので、行の順序は比べません。
//! 記録し直すには: `cargo xtask bless`

use std::path::Path;

use crate::common::*;
use encoding_rs::{EUC_JP, SHIFT_JIS};

/// 日本語の名前を持つ、小さな原稿フォルダ
fn make_manuscript(root: &Path) {
    let dir = root.join("原稿");
    write(
        &dir,
        "README.md",
        "# 原稿\n\n各章のテキストです。\n".as_bytes(),
    );
    write(
        &dir,
        "第1章.txt",
        &encode("第1章 はじめに\r\n吾輩は猫である。①㈱髙\r\n", SHIFT_JIS),
    );
    write(
        &dir,
        "第2章.txt",
        &encode("第2章 つづき\n名前はまだ無い。\n", EUC_JP),
    );
    write(
        &dir,
        "付録/用語集.txt",
        "\u{FEFF}用語集\r\nスレッド: 実行の流れ\r\n".as_bytes(),
    );
    let mut broken = encode("古いメモ", SHIFT_JIS);
    broken.push(0xFF);
    write(&dir, "付録/古いメモ.txt", &broken);
    write(&dir, "画像/表紙.png", PNG_BYTES);
    #[cfg(unix)]
    std::os::unix::fs::symlink("第3章.txt", dir.join("最新版.txt")).unwrap();
}

/// 端末で実行したときと同じ並び（標準出力の報告の後に、標準エラーの要約）で記録する
fn session() -> String {
    let dir = tempfile::tempdir().unwrap();
    make_manuscript(dir.path());
    let mut transcript = String::new();
    for args in [
        &["stats", "原稿", "--format", "csv"][..],
        &["convert", "原稿", "出力"][..],
        &["convert", "--check", "原稿"][..],
    ] {
        let run = fileproc_in(dir.path(), args);
        transcript += &format!(
            "$ fileproc {}\n{}{}",
            args.join(" "),
            run.stdout,
            run.stderr
        );
        transcript += &format!("$ echo $?\n{}\n", run.code().unwrap());
    }
    transcript
}

#[cfg(unix)]
#[test]
fn session_txt_matches_a_fresh_run() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("session.txt");
    // 報告は終わった順に並ぶので、行の順序は比べません（時間などの数値も無視します）。
    let varies = book_support::Varies::nothing()
        .durations()
        .ratios()
        .any_line_order();
    book_support::assert_matches_recording(path, &session(), varies);
}

//! 変換のオプション: BOMのないUTF-16（`--from`）、CI向けの`--check`、nkfのような`--to`と`--eol`、
//! ログの量（`-q`、`-v`）。

use std::fs;

use crate::common::*;
use encoding_rs::SHIFT_JIS;

fn utf16(text: &str, little_endian: bool) -> Vec<u8> {
    text.encode_utf16()
        .flat_map(|unit| {
            if little_endian {
                unit.to_le_bytes()
            } else {
                unit.to_be_bytes()
            }
        })
        .collect()
}

#[test]
fn utf16_without_a_bom_is_converted_with_from() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    write(&src, "le.txt", &utf16("UTF-16のメモ\r\nBOMなし\r\n", true));
    let (src, dst) = (src.to_str().unwrap(), dst.to_str().unwrap());

    // 指定がなければ、NULを含むのでバイナリとしてスキップする
    let run = fileproc(&["convert", src, dst]);
    assert_eq!(run.records()["le.txt"]["reason"], "バイナリ");

    // 以前は--fromを指定しても、NULの検査が先に走ってバイナリになりました。
    let run = fileproc(&["convert", src, dst, "--from", "utf-16le"]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    assert_eq!(run.records()["le.txt"]["encoding"], "UTF-16LE");
    assert_eq!(
        fs::read_to_string(dir.path().join("dst/le.txt")).unwrap(),
        "UTF-16のメモ\nBOMなし\n"
    );

    write(
        dir.path(),
        "be/be.txt",
        &utf16("ビッグエンディアン\n", false),
    );
    let be = dir.path().join("be");
    let run = fileproc(&["stats", be.to_str().unwrap(), "--from", "utf-16be"]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    assert_eq!(run.records()["be.txt"]["chars"], 10);
}

#[test]
fn check_writes_nothing_and_fails_when_something_would_change() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src, "ok.txt", b"already utf-8\n");
    write(&src, "sjis.txt", &encode("変換が要る\r\n", SHIFT_JIS));
    let before = snapshot(&src);

    let run = fileproc(&["convert", "--check", src.to_str().unwrap()]);
    assert_eq!(run.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("変換の要るファイルが1個あります"),
        "{}",
        run.stderr
    );
    assert_eq!(run.statuses()["sjis.txt"], "converted");
    assert_eq!(snapshot(&src), before);

    // 変換した後なら、--checkは終了コード0
    fileproc(&["convert", "--in-place", src.to_str().unwrap()]);
    let run = fileproc(&["convert", "--check", src.to_str().unwrap()]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
}

#[test]
fn to_and_eol_write_another_encoding_and_newline() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    write(&src, "utf8.txt", "UTF-8で書いた①㈱髙\n二行目".as_bytes());
    // すでにCP932＋CRLFなら「変更なし」で、バイト列もそのまま写す
    let sjis = encode("もとからShift_JIS\r\n", SHIFT_JIS);
    write(&src, "sjis.txt", &sjis);
    write(&src, "emoji.txt", "絵文字😀はShift_JISにない\n".as_bytes());

    let run = fileproc(&[
        "convert",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
        "--to",
        "cp932",
        "--eol",
        "crlf",
    ]);
    assert_eq!(run.code(), Some(1), "{}", run.stderr);
    let statuses = run.statuses();
    assert_eq!(statuses["utf8.txt"], "converted");
    assert_eq!(statuses["sjis.txt"], "unchanged");
    assert_eq!(statuses["emoji.txt"], "failed");
    assert_eq!(
        fs::read(dst.join("utf8.txt")).unwrap(),
        encode("UTF-8で書いた①㈱髙\r\n二行目", SHIFT_JIS)
    );
    assert_eq!(fs::read(dst.join("sjis.txt")).unwrap(), sjis);
    assert!(!dst.join("emoji.txt").exists());
    let reason = run.records()["emoji.txt"]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("U+1F600"), "{reason}");

    // ISO-2022-JPは最後にASCIIへ戻るエスケープシーケンスまで書く
    let jis = dir.path().join("jis");
    let run = fileproc(&[
        "convert",
        src.to_str().unwrap(),
        jis.to_str().unwrap(),
        "--to",
        "iso-2022-jp",
        "-i",
        "utf8.txt",
    ]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    let bytes = fs::read(jis.join("utf8.txt")).unwrap();
    let (text, had_errors) = encoding_rs::ISO_2022_JP.decode_without_bom_handling(&bytes);
    assert!(!had_errors);
    assert_eq!(text, "UTF-8で書いた①㈱髙\n二行目");
    assert!(bytes.ends_with(b"\x1b(B"), "{bytes:?}");

    // UTF-16では書き出せない（encoding_rsはUTF-16への符号化をしない）
    let run = fileproc(&[
        "convert",
        "--check",
        src.to_str().unwrap(),
        "--to",
        "utf-16le",
    ]);
    assert_eq!(run.code(), Some(2));
}

#[test]
fn quiet_and_verbose_change_what_goes_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src, "a.txt", b"a\r\n");
    let run = fileproc(&["convert", "--in-place", "-q", src.to_str().unwrap()]);
    assert_eq!(run.code(), Some(0));
    assert_eq!(run.stderr, "");
    assert_eq!(run.statuses()["a.txt"], "converted");

    write(&src, "b.txt", b"b\r\n");
    let run = fileproc(&["convert", "--in-place", "-vv", src.to_str().unwrap()]);
    assert!(run.stderr.contains("INFO"), "{}", run.stderr);
    assert!(run.stderr.contains("DEBUG b.txt: 変換"), "{}", run.stderr);
}

//! 本物の`fileproc`を、テストが一時ディレクトリに作った木に対して実行して確かめます。

use std::fs;
use std::path::Path;

use crate::common::*;
use sha2::{Digest, Sha256};

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    make_tree(&dir.path().join("src"));
    dir
}

#[test]
fn convert_mirrors_the_tree_as_utf8_lf_byte_for_byte() {
    let dir = tree();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let before = snapshot(&src);

    let run = fileproc(&[
        "convert".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
        "--jobs".as_ref(),
        "2".as_ref(),
    ]);

    // 変換元には1バイトも触れない
    assert_eq!(snapshot(&src), before);
    // 変換したファイルはバイト単位で期待どおり
    for case in text_cases() {
        let out = fs::read(dst.join(case.rel)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            case.expected,
            "{}",
            case.rel
        );
    }
    // バイナリ・壊れたファイル・リンクは書き出さない
    let written: Vec<String> = snapshot(&dst)
        .into_keys()
        .map(|p| p.display().to_string())
        .collect();
    let mut expected: Vec<String> = text_cases().iter().map(|c| c.rel.to_string()).collect();
    expected.sort();
    assert_eq!(written, expected);
    assert_no_temp_files(&dst);

    // 報告: ファイルごとの状態と、失敗の理由
    let statuses = run.statuses();
    for case in text_cases() {
        assert_eq!(statuses[case.rel], case.status, "{}", case.rel);
    }
    assert_eq!(statuses[PNG], "skipped");
    assert_eq!(statuses[LINK], "skipped");
    assert_eq!(statuses[BROKEN], "failed");
    let records = run.records();
    assert_eq!(records["sjis/chapter1.txt"]["encoding"], "Shift_JIS");
    assert_eq!(records["euc/memo.txt"]["encoding"], "EUC-JP");
    assert_eq!(records["jis/mail.txt"]["encoding"], "ISO-2022-JP");
    assert_eq!(records["utf16.txt"]["encoding"], "UTF-16LE");
    assert_eq!(records["bom.txt"]["bom"], true);
    assert_eq!(records["crlf.txt"]["newline"], "CRLF");
    assert_eq!(records[PNG]["reason"], "バイナリ");
    let reason = records[BROKEN]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("オフセット{BROKEN_OFFSET}にShift_JIS")),
        "{reason}"
    );

    // 失敗は標準エラーにもパス付きで出て、終了コードは1
    assert!(
        run.stderr
            .contains(&format!("失敗: {BROKEN}: オフセット{BROKEN_OFFSET}")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("変換 7、変更なし 2、スキップ 2、失敗 1（12項目）"),
        "{}",
        run.stderr
    );
    assert_eq!(run.code(), Some(1));
}

#[test]
fn exit_status_is_zero_when_nothing_failed() {
    let dir = tree();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    fs::remove_file(src.join(BROKEN)).unwrap();
    let run = fileproc(&["convert".as_ref(), src.as_os_str(), dst.as_os_str()]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    assert!(!run.stderr.contains("失敗:"));
}

#[test]
fn stats_matches_a_sequential_computation() {
    let dir = tree();
    let src = dir.path().join("src");
    let run = fileproc(&[
        "stats".as_ref(),
        src.as_os_str(),
        "-j".as_ref(),
        "3".as_ref(),
    ]);
    assert_eq!(run.code(), Some(1)); // 壊れたファイルがある
    let records = run.records();

    // テストの中で1ファイルずつ順に計算した値と比べる
    let mut lines = 0;
    for case in text_cases() {
        let record = &records[case.rel];
        assert_eq!(record["status"], "text", "{}", case.rel);
        assert_eq!(record["bytes"], case.input.len(), "{}", case.rel);
        let sha: String = Sha256::digest(&case.input)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(record["sha256"], sha, "{}", case.rel);
        assert_eq!(
            record["chars"],
            case.expected.chars().count(),
            "{}",
            case.rel
        );
        let n = case.expected.lines().count();
        assert_eq!(record["lines"], n, "{}", case.rel);
        lines += n;
    }
    let png_sha: String = Sha256::digest(PNG_BYTES)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(records[PNG]["status"], "binary");
    assert_eq!(records[PNG]["sha256"], png_sha);
    assert_eq!(records[PNG]["lines"], serde_json::Value::Null);
    assert_eq!(records[BROKEN]["status"], "failed");
    assert!(
        run.stderr
            .contains("テキスト 9、バイナリ 1、スキップ 1、失敗 1（12項目）"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("{lines}行・")),
        "{}",
        run.stderr
    );

    // 1スレッドで実行しても、報告の行は1文字も変わらない（並ぶ順序は、終わった順）
    let sequential = fileproc(&[
        "stats".as_ref(),
        src.as_os_str(),
        "-j".as_ref(),
        "1".as_ref(),
    ]);
    assert_eq!(sequential.sorted_stdout(), run.sorted_stdout());
    // 1スレッドなら名前順に歩くので、報告も名前順に並ぶ
    let paths: Vec<String> = sequential
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["path"].to_string())
        .collect();
    assert!(paths.is_sorted(), "{paths:?}");
}

#[test]
fn csv_report_has_a_header_and_one_row_per_item() {
    let dir = tree();
    let src = dir.path().join("src");
    let run = fileproc(&[
        "stats".as_ref(),
        src.as_os_str(),
        "--format".as_ref(),
        "csv".as_ref(),
    ]);
    let mut rows = run.stdout.lines();
    assert_eq!(
        rows.next(),
        Some("path,status,encoding,bom,newline,lines,chars,bytes,sha256,reason")
    );
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), 12);
    assert!(
        rows.iter()
            .any(|r| r.starts_with("euc/memo.txt,text,EUC-JP,false,LF,2,")),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with(&format!("{BROKEN},failed,,,,,,,,"))),
        "{rows:?}"
    );
}

#[cfg(unix)]
#[test]
fn in_place_converts_and_keeps_permissions() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, SystemTime};

    let dir = tree();
    let src = dir.path().join("src");
    let mode = |rel: &str| fs::metadata(src.join(rel)).unwrap().permissions().mode() & 0o777;
    fs::set_permissions(
        src.join("sjis/chapter1.txt"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    fs::set_permissions(src.join("crlf.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    // 変換の要らないファイルは置き換えない: 更新時刻が古いまま残ることで確かめる
    let old = SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(src.join("plain.txt"))
        .unwrap()
        .set_modified(old)
        .unwrap();

    let run = fileproc(&["convert".as_ref(), "--in-place".as_ref(), src.as_os_str()]);
    assert_eq!(run.code(), Some(1), "{}", run.stderr);

    for case in text_cases() {
        let out = fs::read_to_string(src.join(case.rel)).unwrap();
        assert_eq!(out, case.expected, "{}", case.rel);
    }
    assert_eq!(mode("sjis/chapter1.txt"), 0o640);
    assert_eq!(mode("crlf.txt"), 0o755);
    assert_eq!(
        fs::metadata(src.join("plain.txt"))
            .unwrap()
            .modified()
            .unwrap(),
        old
    );
    assert_eq!(fs::read(src.join(BROKEN)).unwrap(), broken_bytes());
    assert_eq!(fs::read(src.join(PNG)).unwrap(), PNG_BYTES);
    assert!(
        fs::symlink_metadata(src.join(LINK))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_no_temp_files(&src);
}

/// 1MB近く正しいShift_JISが続いた後に、不正なバイト
fn long_file_broken_at_the_end() -> (Vec<u8>, usize) {
    let line = "長い原稿の一行です。途中までは正しいShift_JISです。\r\n".repeat(15_000);
    let mut bytes = encode(&line, encoding_rs::SHIFT_JIS);
    let offset = bytes.len();
    bytes.extend([0xFF, b'\r', b'\n']);
    (bytes, offset)
}

#[test]
fn a_failure_mid_write_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let (broken, offset) = long_file_broken_at_the_end();
    assert!(
        broken.len() > 10 * 64 * 1024,
        "出力が何度も書き出されてから失敗する大きさ"
    );
    write(&src, "long.txt", &broken);
    write(
        &src,
        "ok.txt",
        &encode("正しいファイル\r\n", encoding_rs::SHIFT_JIS),
    );

    // 写す場合: 書きかけの出力はどこにも残らない
    let run = fileproc(&["convert".as_ref(), src.as_os_str(), dst.as_os_str()]);
    assert_eq!(run.code(), Some(1));
    assert!(
        run.stderr
            .contains(&format!("失敗: long.txt: オフセット{offset}に")),
        "{}",
        run.stderr
    );
    assert!(!dst.join("long.txt").exists());
    assert_eq!(
        fs::read_to_string(dst.join("ok.txt")).unwrap(),
        "正しいファイル\n"
    );
    assert_no_temp_files(&dst);

    // その場で置き換える場合: 元のファイルは1バイトも変わらない
    let run = fileproc(&["convert".as_ref(), "--in-place".as_ref(), src.as_os_str()]);
    assert_eq!(run.code(), Some(1));
    assert_eq!(fs::read(src.join("long.txt")).unwrap(), broken);
    assert_eq!(
        fs::read_to_string(src.join("ok.txt")).unwrap(),
        "正しいファイル\n"
    );
    assert_no_temp_files(&src);
}

#[test]
fn a_destination_that_cannot_be_replaced_fails_only_that_file() {
    let dir = tree();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    // 書き出し先にディレクトリがあると、最後のrename（persist）が失敗する
    fs::create_dir_all(dst.join("plain.txt")).unwrap();

    let run = fileproc(&["convert".as_ref(), src.as_os_str(), dst.as_os_str()]);
    assert_eq!(run.code(), Some(1));
    let records = run.records();
    assert_eq!(records["plain.txt"]["status"], "failed");
    let reason = records["plain.txt"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("書き込めません: "), "{reason}");
    // ディレクトリはそのまま、一時ファイルも残らず、ほかのファイルは変換されている
    assert!(dst.join("plain.txt").is_dir());
    assert_eq!(fs::read_dir(dst.join("plain.txt")).unwrap().count(), 0);
    assert_no_temp_files(&dst);
    assert_eq!(
        fs::read_to_string(dst.join("bom.txt")).unwrap(),
        "BOM付きのUTF-8\n二行目"
    );
}

#[test]
fn dry_run_writes_nothing_and_reports_what_would_happen() {
    let dir = tree();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let before = snapshot(&src);

    let dry = fileproc(&[
        "convert".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
        "--dry-run".as_ref(),
    ]);
    assert!(!dst.exists());
    let dry_in_place = fileproc(&[
        "convert".as_ref(),
        "--in-place".as_ref(),
        "--dry-run".as_ref(),
        src.as_os_str(),
    ]);
    assert_eq!(snapshot(&src), before);
    assert!(
        dry.stderr.contains("何も書き込んでいません"),
        "{}",
        dry.stderr
    );

    let real = fileproc(&["convert".as_ref(), src.as_os_str(), dst.as_os_str()]);
    assert_eq!(dry.sorted_stdout(), real.sorted_stdout());
    assert_eq!(dry_in_place.sorted_stdout(), real.sorted_stdout());
    assert_eq!((dry.code(), dry_in_place.code()), (Some(1), Some(1)));
}

#[test]
fn globs_select_and_exclude_paths() {
    let dir = tree();
    let src = dir.path().join("src");
    let run = fileproc(&[
        "stats".as_ref(),
        src.as_os_str(),
        "-i".as_ref(),
        "*.txt".as_ref(),
        "-e".as_ref(),
        "deep".as_ref(),
        "-e".as_ref(),
        "bad/**".as_ref(),
    ]);
    let paths: Vec<String> = run.records().into_keys().collect();
    assert_eq!(
        paths,
        [
            "bom.txt",
            "crlf.txt",
            "dangling.txt",
            "empty.txt",
            "euc/memo.txt",
            "jis/mail.txt",
            "plain.txt",
            "sjis/chapter1.txt",
            "utf16.txt"
        ]
    );
    assert_eq!(run.code(), Some(0));
}

#[test]
fn an_unsure_guess_fails_and_from_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(
        &src,
        "latin1.txt",
        &encode("Café crème brûlée à la carte\n", encoding_rs::WINDOWS_1252),
    );

    // 日本語の文字コードでも UTF-8 でもないと推定されたら、化けさせずに失敗にする
    let run = fileproc(&["stats".as_ref(), src.as_os_str()]);
    assert_eq!(run.code(), Some(1));
    let reason = run.records()["latin1.txt"]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.starts_with("文字コードを判定できません"), "{reason}");

    let run = fileproc(&[
        "stats".as_ref(),
        src.as_os_str(),
        "--from".as_ref(),
        "latin1".as_ref(),
    ]);
    assert_eq!(run.code(), Some(0));
    assert_eq!(run.records()["latin1.txt"]["encoding"], "windows-1252");
    assert_eq!(run.records()["latin1.txt"]["chars"], 29);
}

#[test]
fn usage_errors_exit_with_2_before_touching_anything() {
    let dir = tree();
    let src = dir.path().join("src");
    let inside = src.join("out");
    let check = |args: &[&std::ffi::OsStr], message: &str| {
        let run = fileproc(args);
        assert_eq!(run.code(), Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "");
    };
    check(
        &["convert".as_ref(), src.as_os_str(), inside.as_os_str()],
        "の中にあります",
    );
    check(&["convert".as_ref(), src.as_os_str()], "<DST>");
    check(
        &[
            "stats".as_ref(),
            src.as_os_str(),
            "--jobs".as_ref(),
            "0".as_ref(),
        ],
        "--jobs",
    );
    check(
        &["stats".as_ref(), src.join("plain.txt").as_os_str()],
        "ディレクトリではありません",
    );
    check(
        &["stats".as_ref(), Path::new("no/such/dir").as_os_str()],
        "no/such/dir",
    );
    check(
        &[
            "stats".as_ref(),
            src.as_os_str(),
            "--from".as_ref(),
            "sjis2".as_ref(),
        ],
        "知らない文字コード",
    );
    check(
        &[
            "stats".as_ref(),
            src.as_os_str(),
            "-i".as_ref(),
            "[".as_ref(),
        ],
        "--include",
    );
    assert!(!inside.exists());
}

#[test]
fn legacy_bytes_after_a_long_ascii_head_fail_clearly_and_from_fixes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    // 先頭の64KiBがASCIIだけなら、UTF-8と判定されます。後ろのShift_JISはデコードの途中で見つかります。
    let ascii = "// ASCII only header line\r\n".repeat(3000);
    let mut bytes = ascii.clone().into_bytes();
    bytes.extend(encode("// 日本語のコメント\r\n", encoding_rs::SHIFT_JIS));
    write(&src, "late.c", &bytes);

    let run = fileproc(&["convert".as_ref(), src.as_os_str(), dst.as_os_str()]);
    assert_eq!(run.code(), Some(1));
    let reason = run.records()["late.c"]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        reason,
        format!(
            "オフセット{}にUTF-8として不正なバイト列があります。--fromで文字コードを指定できます",
            ascii.len() + 3
        )
    );
    assert!(!dst.join("late.c").exists());

    let run = fileproc(&[
        "convert".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
        "--from".as_ref(),
        "cp932".as_ref(),
    ]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    let expected = ascii.replace("\r\n", "\n") + "// 日本語のコメント\n";
    assert_eq!(fs::read_to_string(dst.join("late.c")).unwrap(), expected);
}

//! テストが共有する道具: 本物のバイナリを起動する関数と、テスト用の木を作る関数。

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use encoding_rs::{EUC_JP, Encoding, ISO_2022_JP, SHIFT_JIS};

/// バイナリがこれより長く動いたら、テストを止めずに失敗させる
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// JSON Linesの報告を、パスから行への対応にする
    pub fn records(&self) -> BTreeMap<String, serde_json::Value> {
        self.stdout
            .lines()
            .map(|line| {
                let value: serde_json::Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                (value["path"].as_str().unwrap().to_string(), value)
            })
            .collect()
    }

    /// 報告の行を名前順に並べたもの（報告は処理の終わった順に出るので、比べるときはこれを使う）
    pub fn sorted_stdout(&self) -> Vec<&str> {
        let mut lines: Vec<&str> = self.stdout.lines().collect();
        lines.sort_unstable();
        lines
    }

    pub fn statuses(&self) -> BTreeMap<String, String> {
        self.records()
            .into_iter()
            .map(|(path, value)| (path, value["status"].as_str().unwrap().to_string()))
            .collect()
    }
}

/// `dir`で`fileproc`を起動するコマンド（テストが自分で起動して、途中で止めるときに使う）
pub fn fileproc_command<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fileproc"));
    command.args(args).current_dir(dir);
    command
}

/// `fileproc`を`dir`で起動し、終わるのを（上限付きで）待つ
pub fn fileproc_in<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Run {
    let command = fileproc_command(dir, args);
    let run = book_support::run_command(command, TIMEOUT);
    Run {
        status: run.status,
        stdout: run.stdout,
        stderr: run.stderr,
    }
}

pub fn fileproc<S: AsRef<OsStr>>(args: &[S]) -> Run {
    fileproc_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// `text`を`encoding`で符号化する（符号化できない文字があればテストの誤り）
pub fn encode(text: &str, encoding: &'static Encoding) -> Vec<u8> {
    let (bytes, _, had_errors) = encoding.encode(text);
    assert!(
        !had_errors,
        "{text:?} cannot be encoded in {}",
        encoding.name()
    );
    bytes.into_owned()
}

pub fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// 変換できるテキストファイル: 相対パス、元のバイト列、変換後に期待するバイト列
pub struct Case {
    pub rel: &'static str,
    pub input: Vec<u8>,
    pub expected: &'static str,
    pub status: &'static str,
}

/// テスト用の木の中で、変換できるテキストファイル
pub fn text_cases() -> Vec<Case> {
    let utf16le = |text: &str| {
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        bytes
    };
    vec![
        Case {
            rel: "sjis/chapter1.txt",
            // ①と㈱はNECの特殊文字、髙はIBMの拡張文字: CP932にだけある文字です。
            input: encode("第1章 はじめに\r\n吾輩は猫である。①㈱髙\r\n", SHIFT_JIS),
            expected: "第1章 はじめに\n吾輩は猫である。①㈱髙\n",
            status: "converted",
        },
        Case {
            rel: "euc/memo.txt",
            input: encode(
                "名前はまだ無い。\nどこで生れたかとんと見当がつかぬ。\n",
                EUC_JP,
            ),
            expected: "名前はまだ無い。\nどこで生れたかとんと見当がつかぬ。\n",
            status: "converted",
        },
        Case {
            rel: "jis/mail.txt",
            input: encode("こんにちは、ISO-2022-JPのメールです。\n", ISO_2022_JP),
            expected: "こんにちは、ISO-2022-JPのメールです。\n",
            status: "converted",
        },
        Case {
            rel: "bom.txt",
            input: "\u{FEFF}BOM付きのUTF-8\r\n二行目".as_bytes().to_vec(),
            expected: "BOM付きのUTF-8\n二行目",
            status: "converted",
        },
        Case {
            rel: "crlf.txt",
            // 単独のCRは改行ではないので、そのまま残します。
            input: "Windowsの改行\r\nCRだけ\rの行\r\n".as_bytes().to_vec(),
            expected: "Windowsの改行\nCRだけ\rの行\n",
            status: "converted",
        },
        Case {
            rel: "utf16.txt",
            input: utf16le("UTF-16のメモ帳\r\n"),
            expected: "UTF-16のメモ帳\n",
            status: "converted",
        },
        Case {
            rel: "plain.txt",
            input: "もともとUTF-8でLFです\n".as_bytes().to_vec(),
            expected: "もともとUTF-8でLFです\n",
            status: "unchanged",
        },
        Case {
            rel: "deep/a/b/c/nested.txt",
            input: encode("深い階層のShift_JIS\r\n", SHIFT_JIS),
            expected: "深い階層のShift_JIS\n",
            status: "converted",
        },
        Case {
            rel: "empty.txt",
            input: Vec::new(),
            expected: "",
            status: "unchanged",
        },
    ]
}

/// 不正なバイト列を含むファイル（Shift_JISの0xFFは、どの文字にもならない）
pub const BROKEN: &str = "bad/broken.txt";
pub const BROKEN_OFFSET: usize = 6;

pub fn broken_bytes() -> Vec<u8> {
    let mut bytes = encode("壊れた", SHIFT_JIS);
    assert_eq!(bytes.len(), BROKEN_OFFSET);
    bytes.push(0xFF);
    bytes.extend(encode("ファイル\r\n", SHIFT_JIS));
    bytes
}

pub const PNG: &str = "img/logo.png";
pub const PNG_BYTES: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01";
pub const LINK: &str = "dangling.txt";

/// テスト用の木を作る: いろいろな文字コードと改行、バイナリ、壊れたファイル、切れたシンボリックリンク
pub fn make_tree(root: &Path) {
    for case in text_cases() {
        write(root, case.rel, &case.input);
    }
    write(root, BROKEN, &broken_bytes());
    write(root, PNG, PNG_BYTES);
    #[cfg(unix)]
    std::os::unix::fs::symlink("no-such-file.txt", root.join(LINK)).unwrap();
}

/// 木の中のすべてのファイル（シンボリックリンクはリンクとして）: 相対パスから中身への対応
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
            let bytes = if e.file_type().is_symlink() {
                let target = fs::read_link(e.path()).unwrap();
                format!("-> {}", target.display()).into_bytes()
            } else {
                fs::read(e.path()).unwrap()
            };
            (rel, bytes)
        })
        .collect()
}

/// `fileproc`の一時ファイル（`.fileproc-`＋英数字6文字＋`.tmp`）か
pub fn is_temp_name(name: &str) -> bool {
    name.strip_prefix(".fileproc-")
        .and_then(|rest| rest.strip_suffix(".tmp"))
        .is_some_and(|r| r.len() == 6 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `fileproc`の一時ファイルが残っていないこと
pub fn assert_no_temp_files(root: &Path) {
    for e in walkdir::WalkDir::new(root) {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!is_temp_name(&name), "a temporary file was left: {name}");
    }
}

/// Shift_JIS＋CRLFの小さなファイルを`n`個、`n / 100`個のディレクトリに分けて作り、
/// 変換前と変換後のバイト列を返す（使うのはUnixだけで動く`streaming.rs`）
#[cfg(unix)]
pub fn many_files(root: &Path, n: usize) -> (Vec<u8>, Vec<u8>) {
    let text = "並行処理のテスト用のファイルです。\r\n二行目\r\n";
    let input = encode(text, SHIFT_JIS);
    for i in 0..n {
        write(root, &format!("d{:02}/f{i:05}.txt", i % 100), &input);
    }
    (input, text.replace("\r\n", "\n").into_bytes())
}

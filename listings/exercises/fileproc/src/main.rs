//! 練習問題2の解答例: テキストファイルの木を並列に処理するツール`fileproc`です。
//!
//! - `fileproc stats DIR` — ファイルごとの文字コード・改行・行数・文字数・バイト数・SHA-256を
//!   JSON Lines（既定）かCSV（`--format csv`）で標準出力に書き、合計を標準エラーに出します。
//! - `fileproc convert SRC DST` — SRCの木をDSTに写しながら、Shift_JIS（CP932）・EUC-JP・
//!   ISO-2022-JP・BOM付きUTF-8・UTF-16とCRLFのテキストをUTF-8＋LFに変換します。
//!   `fileproc convert --in-place DIR`はその場で置き換えます（パーミッションは保ちます）。
//!
//! 実行例: `cargo run -p fileproc -- convert 原稿 出力 --dry-run`
//!
//! どのファイルも同じディレクトリの一時ファイルに書いてから名前を変えるので、途中で止まっても
//! 書きかけのファイルは残りません。失敗したファイルがあれば、ほかのファイルは最後まで処理したうえで
//! 終了コード1で終わります（使い方の誤りなど、始められなかったときは2です）。

use std::error::Error;
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::Instant;

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use clap::{Parser, Subcommand, ValueEnum};
use encoding_rs::{DecoderResult, EUC_JP, Encoding, ISO_2022_JP, SHIFT_JIS, UTF_8};
use globset::{Glob, GlobSet, GlobSetBuilder};
use indicatif::{ParallelProgressIterator, ProgressBar, ProgressStyle};
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use serde::Serialize;
use sha2::{Digest, Sha256};

// ANCHOR: cli
/// テキストファイルの木をUTF-8＋LFにそろえ、統計を取ります。
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// 並列に処理するスレッドの数（既定: CPUの数）
    #[arg(short, long, global = true, value_name = "N")]
    jobs: Option<NonZeroUsize>,
    /// 処理するファイルのグロブ。ルートからの相対パスと照合します（複数指定可）
    #[arg(short, long, global = true, value_name = "GLOB", value_parser = Glob::new)]
    include: Vec<Glob>,
    /// 除外するファイルやディレクトリのグロブ（複数指定可）
    #[arg(short, long, global = true, value_name = "GLOB", value_parser = Glob::new)]
    exclude: Vec<Glob>,
    /// 文字コードを判定せず、この文字コードとして読みます（例: cp932、euc-jp）
    #[arg(long, global = true, value_name = "ENCODING", value_parser = parse_encoding)]
    from: Option<&'static Encoding>,
    /// 標準出力に書く報告の形式
    #[arg(long, global = true, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
}

#[derive(Subcommand)]
enum Command {
    /// ファイルごとの行数・文字数・バイト数・SHA-256を数えます
    Stats {
        /// 調べるディレクトリ
        dir: PathBuf,
    },
    /// テキストファイルをUTF-8＋LFに変換します
    Convert {
        /// 変換元のディレクトリ
        src: PathBuf,
        /// 変換先のディレクトリ（SRCと同じ構造で書き出します）
        #[arg(required_unless_present = "in_place")]
        dst: Option<PathBuf>,
        /// 変換先を作らず、SRCのファイルをその場で置き換えます
        #[arg(long, conflicts_with = "dst")]
        in_place: bool,
        /// 何も書き込まずに、何が起きるかだけを報告します
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

fn parse_encoding(label: &str) -> Result<&'static Encoding, String> {
    // `cp932`はWHATWGのラベルにないので、同じ符号化（Windows-31J）として探します。
    let known = if label.eq_ignore_ascii_case("cp932") {
        "windows-31j"
    } else {
        label
    };
    Encoding::for_label(known.as_bytes()).ok_or_else(|| format!("知らない文字コードです: {label}"))
}
// ANCHOR_END: cli

// ANCHOR: main
fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_failed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("fileproc: {e}");
            ExitCode::from(2)
        }
    }
}

/// 全体を実行し、失敗したファイルの数を返す
fn run(cli: Cli) -> Result<usize, Box<dyn Error>> {
    let jobs = match cli.jobs {
        Some(jobs) => jobs.get(),
        None => thread::available_parallelism().map_or(1, NonZeroUsize::get),
    };
    // `--jobs`の数だけスレッドを持つプールを作り、ファイルの処理はすべてこの中で行います。
    let pool = ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("fileproc-{i}"))
        .build()?;
    let filter = Filter::new(&cli.include, &cli.exclude)?;
    let started = Instant::now();
    match cli.command {
        Command::Stats { dir } => {
            let entries = walk(&dir, &filter)?;
            let records = process_all(&pool, &entries, |entry| stats_file(&dir, entry, cli.from));
            report(&records, cli.format, STATS, started)
        }
        // `--in-place`と`DST`のどちらか一方だけがあることは、clapが確かめています。
        Command::Convert {
            src, dst, dry_run, ..
        } => {
            let target = Target::new(src, dst, dry_run)?;
            let entries = walk(&target.src, &filter)?;
            let records = process_all(&pool, &entries, |entry| {
                convert_file(&target, entry, cli.from)
            });
            let failed = report(&records, cli.format, CONVERT, started)?;
            if dry_run {
                eprintln!("--dry-runなので、何も書き込んでいません");
            }
            Ok(failed)
        }
    }
}

/// すべての項目をプールで並列に処理し、報告の行を項目と同じ順序で返す
fn process_all(
    pool: &ThreadPool,
    entries: &[Entry],
    job: impl Fn(&Entry) -> Result<Record, Failure> + Sync,
) -> Vec<Record> {
    // 標準エラーが端末でなければ（パイプやファイルなら）、バーは描かれません。
    let bar = ProgressBar::new(entries.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len}ファイル 経過{elapsed} 残り{eta}")
            .expect("テンプレートは正しい"),
    );
    // `par_iter`の`collect`は元の順序を保つので、報告は実行のたびに同じ順に並びます。
    let records = pool.install(|| {
        entries
            .par_iter()
            .progress_with(bar.clone())
            .map(|entry| process(entry, &job))
            .collect()
    });
    bar.finish_and_clear();
    records
}

/// 1項目を報告の1行にする。失敗は`Err`のまま外へ出さず、理由を書いた1行になる
fn process(entry: &Entry, job: impl FnOnce(&Entry) -> Result<Record, Failure>) -> Record {
    match &entry.kind {
        EntryKind::File => {
            job(entry).unwrap_or_else(|failure| Record::new(entry, Status::Failed).because(failure))
        }
        EntryKind::Skip(reason) => Record::new(entry, Status::Skipped).because(reason),
        EntryKind::Error(error) => Record::new(entry, Status::Failed).because(error),
    }
}
// ANCHOR_END: main

// ANCHOR: walk
/// 木を歩いて見つけた1項目。ここではまだ中身を読まない
struct Entry {
    /// ルートからの相対パス
    rel: PathBuf,
    kind: EntryKind,
}

enum EntryKind {
    File,
    /// 処理しないもの（シンボリックリンクなど）と、その理由
    Skip(&'static str),
    /// 歩く途中のエラー（読めないディレクトリなど）
    Error(String),
}

struct Filter {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl Filter {
    fn new(include: &[Glob], exclude: &[Glob]) -> Result<Self, globset::Error> {
        let set = |globs: &[Glob]| {
            let mut builder = GlobSetBuilder::new();
            for glob in globs {
                builder.add(glob.clone());
            }
            builder.build()
        };
        let include = (!include.is_empty()).then(|| set(include)).transpose()?;
        let exclude = set(exclude)?;
        Ok(Filter { include, exclude })
    }
}

/// 変換中に作る一時ファイルの名前。中断されて残っていても、次の実行では処理しない
const TEMP_PREFIX: &str = ".fileproc-";
const TEMP_SUFFIX: &str = ".tmp";

/// `root`の下を名前順に歩き、処理する項目の一覧を作る
fn walk(root: &Path, filter: &Filter) -> Result<Vec<Entry>, Box<dyn Error>> {
    let meta = fs::metadata(root).map_err(|e| format!("{}: {e}", root.display()))?;
    if !meta.is_dir() {
        return Err(format!("{}はディレクトリではありません", root.display()).into());
    }
    let relative = |path: &Path| path.strip_prefix(root).unwrap_or(path).to_path_buf();
    let walker = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        // 除外に当たるディレクトリには、入りもしません。
        .filter_entry(|e| e.depth() == 0 || !filter.exclude.is_match(relative(e.path())));
    let mut entries = Vec::new();
    for item in walker {
        let found = match item {
            Ok(found) => found,
            Err(error) => {
                let rel = error.path().map_or_else(PathBuf::new, relative);
                let kind = EntryKind::Error(error.to_string());
                entries.push(Entry { rel, kind });
                continue;
            }
        };
        let (rel, file_type) = (relative(found.path()), found.file_type());
        let included = filter.include.as_ref().is_none_or(|set| set.is_match(&rel));
        if file_type.is_dir() || !included {
            continue;
        }
        let name = found.file_name().to_string_lossy();
        let kind = if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) {
            EntryKind::Skip("fileprocの一時ファイル")
        } else if file_type.is_file() {
            EntryKind::File
        } else if file_type.is_symlink() {
            EntryKind::Skip("シンボリックリンクはたどりません")
        } else {
            EntryKind::Skip("通常のファイルではありません")
        };
        entries.push(Entry { rel, kind });
    }
    Ok(entries)
}
// ANCHOR_END: walk

// ANCHOR: sniff
/// 文字コードとバイナリの判定に使う先頭の大きさ。読み書きもこの単位で行う
const CHUNK_LEN: usize = 64 * 1024;

/// 文字コードの推定に使う長さ
const DETECT_LEN: usize = 4 * 1024;

/// 中身の種類。テキストなら、文字コードと先頭のBOMの長さ
enum Content {
    Binary,
    Text(Detected),
}

#[derive(Clone, Copy)]
struct Detected {
    encoding: &'static Encoding,
    bom_len: usize,
}

impl Content {
    /// BOMのないテキスト
    fn text(encoding: &'static Encoding) -> Self {
        Content::Text(Detected {
            encoding,
            bom_len: 0,
        })
    }
}

/// 先頭を最大`CHUNK_LEN`バイト読む。2つ目の値は、ファイルを最後まで読んだかどうか
fn read_head(input: &mut impl Read) -> Result<(Vec<u8>, bool), Failure> {
    let mut head = Vec::with_capacity(CHUNK_LEN);
    input
        .by_ref()
        .take(CHUNK_LEN as u64)
        .read_to_end(&mut head)
        .map_err(Failure::Read)?;
    let whole = head.len() < CHUNK_LEN;
    Ok((head, whole))
}

fn sniff(head: &[u8], whole: bool, from: Option<&'static Encoding>) -> Result<Content, Failure> {
    // BOMがあれば従います。UTF-16はNULを含むので、バイナリの判定より先に見ます。
    if let Some((encoding, bom_len)) = Encoding::for_bom(head) {
        return Ok(Content::Text(Detected { encoding, bom_len }));
    }
    // gitと同じく、先頭8000バイトにNULがあればバイナリとみなします。
    if head.iter().take(8000).any(|&b| b == 0) {
        return Ok(Content::Binary);
    }
    if let Some(encoding) = from {
        return Ok(Content::text(encoding));
    }
    // 多くのファイルはもうUTF-8なので、速い検査で先に見分けます（ISO-2022-JPはESCを含むので除きます）。
    let utf8 = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => !whole && e.error_len().is_none(), // 先頭の末尾で1文字が切れただけ
    };
    if utf8 && !head.contains(&0x1B) {
        return Ok(Content::text(UTF_8));
    }
    // chardetngは1秒に十数MBしか読めないので、最初の非ASCII文字から`DETECT_LEN`バイトだけ渡します。
    let start = head.iter().position(|b| !b.is_ascii()).unwrap_or(0);
    let end = head.len().min(start + DETECT_LEN);
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Allow);
    detector.feed(&head[start..end], whole && end == head.len());
    // `.jp`のページと同じく、日本語の文字コードを優先して推定させます。
    let encoding = detector.guess(Some(b"jp"), Utf8Detection::Allow);
    // それ以外の推定は外れている恐れがあるので、化けた文字を書く代わりに失敗にします。
    if [UTF_8, SHIFT_JIS, EUC_JP, ISO_2022_JP].contains(&encoding) {
        Ok(Content::text(encoding))
    } else {
        Err(Failure::Undetected(encoding))
    }
}
// ANCHOR_END: sniff

// ANCHOR: crlf
/// デコードしたテキスト（改行はLFにそろえた後）について数えたこと
#[derive(Default)]
struct TextInfo {
    chars: u64,
    newlines: u64,
    crlf: u64,
    ends_with_newline: bool,
}

impl TextInfo {
    fn count(&mut self, text: &str) {
        if let Some(last) = text.chars().next_back() {
            self.chars += text.chars().count() as u64;
            self.newlines += text.bytes().filter(|&b| b == b'\n').count() as u64;
            self.ends_with_newline = last == '\n';
        }
    }

    /// 最後の行が改行で終わっていなくても、1行と数える
    fn lines(&self) -> u64 {
        self.newlines + u64::from(self.chars > 0 && !self.ends_with_newline)
    }

    fn newline(&self) -> &'static str {
        match (self.crlf, self.newlines - self.crlf) {
            (0, 0) => "none",
            (_, 0) => "CRLF",
            (0, _) => "LF",
            _ => "mixed",
        }
    }
}

/// CRLFをLFに置き換える。CRとLFが読み込みの境目で分かれても正しく扱う
#[derive(Default)]
struct CrLf {
    pending_cr: bool,
    count: u64,
}

impl CrLf {
    fn convert(&mut self, mut text: &str, out: &mut String) {
        if self.pending_cr && !text.is_empty() {
            self.pending_cr = false;
            match text.strip_prefix('\n') {
                Some(rest) => {
                    self.count += 1;
                    out.push('\n');
                    text = rest;
                }
                None => out.push('\r'),
            }
        }
        while let Some(i) = text.find('\r') {
            out.push_str(&text[..i]);
            let after = &text[i + 1..];
            if let Some(rest) = after.strip_prefix('\n') {
                self.count += 1;
                out.push('\n');
                text = rest;
            } else if after.is_empty() {
                self.pending_cr = true; // LFが次の読み込みの先頭にあるかもしれない
                text = after;
            } else {
                out.push('\r'); // 単独のCRは変えない
                text = after;
            }
        }
        out.push_str(text);
    }

    /// 入力の終わり: 保留していたCRにはLFが続かなかったので、そのまま出す
    fn finish(&mut self, out: &mut String) {
        if std::mem::take(&mut self.pending_cr) {
            out.push('\r');
        }
    }
}
// ANCHOR_END: crlf

// ANCHOR: decode
/// `head`（読み済みの先頭）と`rest`（残り）を`CHUNK_LEN`ずつデコードし、
/// 改行をLFにそろえたテキストを少しずつ`sink`に渡す。不正なバイト列があればそこで失敗する
fn decode(
    detected: Detected,
    head: &[u8],
    mut rest: impl Read,
    mut sink: impl FnMut(&str) -> io::Result<()>,
) -> Result<TextInfo, Failure> {
    let Detected { encoding, bom_len } = detected;
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let (mut crlf, mut info) = (CrLf::default(), TextInfo::default());
    let (mut decoded, mut text) = (String::new(), String::new());
    let mut buf = vec![0; CHUNK_LEN];
    let mut input = &head[bom_len..];
    let mut offset = bom_len as u64; // 失敗した位置を報告するため
    loop {
        let last = input.is_empty(); // 読んでも0バイトなら、ファイルの終わり
        loop {
            decoded.clear();
            let needed = decoder.max_utf8_buffer_length_without_replacement(input.len());
            decoded.reserve(needed.expect("CHUNK_LEN程度の長さでは桁あふれしない"));
            let (result, read) =
                decoder.decode_to_string_without_replacement(input, &mut decoded, last);
            input = &input[read..];
            offset += read as u64;
            crlf.convert(&decoded, &mut text);
            if last && matches!(result, DecoderResult::InputEmpty) {
                crlf.finish(&mut text);
            }
            info.count(&text);
            sink(&text).map_err(Failure::Write)?;
            text.clear();
            match result {
                DecoderResult::InputEmpty => break,
                DecoderResult::OutputFull => continue,
                DecoderResult::Malformed(bad, after) => {
                    let offset = offset - u64::from(bad) - u64::from(after);
                    return Err(Failure::Malformed { encoding, offset });
                }
            }
        }
        if last {
            info.crlf = crlf.count;
            return Ok(info);
        }
        input = read_chunk(&mut rest, &mut buf).map_err(Failure::Read)?;
    }
}

fn read_chunk<'b>(input: &mut impl Read, buf: &'b mut [u8]) -> io::Result<&'b [u8]> {
    loop {
        match input.read(buf) {
            Ok(n) => return Ok(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
// ANCHOR_END: decode

// ANCHOR: stats
/// 読んだバイトを数えながらSHA-256に通すリーダー
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    fn hex_digest(self) -> String {
        self.hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// 1ファイルを先頭から一度だけ読み、ハッシュとテキストの統計を同時に取る
fn stats_file(
    root: &Path,
    entry: &Entry,
    from: Option<&'static Encoding>,
) -> Result<Record, Failure> {
    let file = File::open(root.join(&entry.rel)).map_err(Failure::Read)?;
    let mut input = Hashing::new(file);
    let (head, whole) = read_head(&mut input)?;
    let mut record = match sniff(&head, whole, from)? {
        Content::Binary => {
            io::copy(&mut input, &mut io::sink()).map_err(Failure::Read)?; // 残りもハッシュに通す
            Record::new(entry, Status::Binary)
        }
        Content::Text(detected) => {
            let info = decode(detected, &head, &mut input, |_| Ok(()))?;
            Record::new(entry, Status::Text).with_text(detected, &info)
        }
    };
    record.bytes = Some(input.bytes);
    record.sha256 = Some(input.hex_digest());
    Ok(record)
}
// ANCHOR_END: stats

// ANCHOR: convert
/// 変換の書き出し先。`dst`が`None`なら`--in-place`
struct Target {
    src: PathBuf,
    dst: Option<PathBuf>,
    dry_run: bool,
}

impl Target {
    fn new(src: PathBuf, dst: Option<PathBuf>, dry_run: bool) -> Result<Self, Box<dyn Error>> {
        if let Some(dst) = &dst {
            let src_abs = fs::canonicalize(&src).map_err(|e| format!("{}: {e}", src.display()))?;
            let dst_abs = fs::canonicalize(dst).or_else(|_| std::path::absolute(dst))?;
            if dst_abs.starts_with(&src_abs) {
                return Err(format!(
                    "変換先{}が変換元{}の中にあります（その場で置き換えるなら--in-placeを使います）",
                    dst.display(),
                    src.display()
                )
                .into());
            }
        }
        Ok(Target { src, dst, dry_run })
    }
}

fn convert_file(
    target: &Target,
    entry: &Entry,
    from: Option<&'static Encoding>,
) -> Result<Record, Failure> {
    let src = target.src.join(&entry.rel);
    let mut file = File::open(&src).map_err(Failure::Read)?;
    let before = file.metadata().map_err(Failure::Read)?;
    let (head, whole) = read_head(&mut file)?;
    let Content::Text(detected) = sniff(&head, whole, from)? else {
        return Ok(Record::new(entry, Status::Skipped).because("バイナリ"));
    };
    let record = |info: &TextInfo| {
        let changed = detected.encoding != UTF_8 || detected.bom_len > 0 || info.crlf > 0;
        let status = if changed {
            Status::Converted
        } else {
            Status::Unchanged
        };
        let mut record = Record::new(entry, status).with_text(detected, info);
        record.bytes = Some(before.len());
        record
    };
    if target.dry_run {
        // 書き込まないだけで、最後までデコードします。失敗するファイルも本番と同じく分かります。
        return Ok(record(&decode(detected, &head, file, |_| Ok(()))?));
    }
    let dst = match &target.dst {
        Some(dst) => dst.join(&entry.rel),
        None => src.clone(), // --in-place
    };
    // 一時ファイルは書き出し先と同じディレクトリに作ります。renameがアトミックなのは
    // 同じファイルシステムの中だけだからです。
    let dir = dst.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(Failure::Write)?;
    let temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(Failure::Write)?;
    let mut out = BufWriter::with_capacity(CHUNK_LEN, temp);
    // ここで`?`で抜けると`temp`がドロップされ、書きかけの一時ファイルは消えます。
    let info = decode(detected, &head, file, |text| out.write_all(text.as_bytes()))?;
    let temp = out
        .into_inner()
        .map_err(|e| Failure::Write(e.into_error()))?;
    let record = record(&info);
    if target.dst.is_none() {
        if record.status == Status::Unchanged {
            return Ok(record); // 元のファイルには触らない（一時ファイルは消える）
        }
        // 元の中身を置き換える前に、新しい中身がディスクに届いたことを確かめます。
        temp.as_file().sync_all().map_err(Failure::Write)?;
        ensure_unchanged(&src, &before)?;
    }
    fs::set_permissions(temp.path(), before.permissions()).map_err(Failure::Write)?;
    // 名前の付け替え（rename）はアトミックです。読み手には古い中身か新しい中身のどちらかが見えます。
    temp.persist(&dst).map_err(|e| Failure::Write(e.error))?;
    Ok(record)
}

/// 読み始めてから置き換えるまでの間に、ほかのプログラムが元のファイルを書き換えていないか
fn ensure_unchanged(path: &Path, before: &Metadata) -> Result<(), Failure> {
    let now = fs::metadata(path).map_err(Failure::Read)?;
    if now.len() != before.len() || now.modified().ok() != before.modified().ok() {
        return Err(Failure::Changed);
    }
    Ok(())
}
// ANCHOR_END: convert

// ANCHOR: failure
/// 1ファイルの処理が失敗した理由（どのファイルかは報告の行が持つ）
#[derive(Debug)]
enum Failure {
    Read(io::Error),
    Write(io::Error),
    Undetected(&'static Encoding),
    Malformed {
        encoding: &'static Encoding,
        offset: u64,
    },
    Changed,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Read(e) => write!(f, "読み込めません: {e}"),
            Failure::Write(e) => write!(f, "書き込めません: {e}"),
            Failure::Undetected(guess) => write!(
                f,
                "文字コードを判定できません（推定は{}）。--fromで指定してください",
                guess.name()
            ),
            Failure::Malformed { encoding, offset } => write!(
                f,
                "オフセット{offset}に{}として不正なバイト列があります。--fromで文字コードを指定できます",
                encoding.name()
            ),
            Failure::Changed => write!(
                f,
                "処理中にほかのプログラムが変更したので、置き換えませんでした"
            ),
        }
    }
}
// ANCHOR_END: failure

// ANCHOR: record
#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Text,
    Binary,
    Converted,
    Unchanged,
    Skipped,
    Failed,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Text => "テキスト",
            Status::Binary => "バイナリ",
            Status::Converted => "変換",
            Status::Unchanged => "変更なし",
            Status::Skipped => "スキップ",
            Status::Failed => "失敗",
        }
    }
}

/// 要約に並べる状態（モードごと）
const STATS: [Status; 4] = [
    Status::Text,
    Status::Binary,
    Status::Skipped,
    Status::Failed,
];
const CONVERT: [Status; 4] = [
    Status::Converted,
    Status::Unchanged,
    Status::Skipped,
    Status::Failed,
];

/// 報告の1行（JSON Linesの1行、CSVの1行）。分からない欄は空（`null`）
#[derive(Serialize)]
struct Record {
    path: String,
    status: Status,
    encoding: Option<&'static str>,
    bom: Option<bool>,
    newline: Option<&'static str>,
    lines: Option<u64>,
    chars: Option<u64>,
    bytes: Option<u64>,
    sha256: Option<String>,
    reason: Option<String>,
}

impl Record {
    fn new(entry: &Entry, status: Status) -> Self {
        Record {
            path: entry.rel.display().to_string(),
            status,
            encoding: None,
            bom: None,
            newline: None,
            lines: None,
            chars: None,
            bytes: None,
            sha256: None,
            reason: None,
        }
    }

    fn with_text(mut self, detected: Detected, info: &TextInfo) -> Self {
        self.encoding = Some(detected.encoding.name());
        self.bom = Some(detected.bom_len > 0);
        self.newline = Some(info.newline());
        self.lines = Some(info.lines());
        self.chars = Some(info.chars);
        self
    }

    fn because(mut self, reason: impl ToString) -> Self {
        self.reason = Some(reason.to_string());
        self
    }
}
// ANCHOR_END: record

// ANCHOR: report
/// 報告を標準出力に、失敗の一覧と要約を標準エラーに書き、失敗の数を返す
fn report(
    records: &[Record],
    format: Format,
    statuses: [Status; 4],
    started: Instant,
) -> Result<usize, Box<dyn Error>> {
    let mut out = BufWriter::new(io::stdout().lock());
    match format {
        Format::Jsonl => {
            for record in records {
                serde_json::to_writer(&mut out, record)?;
                writeln!(out)?;
            }
        }
        Format::Csv => {
            let mut csv = csv::Writer::from_writer(&mut out);
            for record in records {
                csv.serialize(record)?;
            }
            csv.flush()?;
        }
    }
    out.flush()?;

    for record in records.iter().filter(|r| r.status == Status::Failed) {
        eprintln!(
            "失敗: {}: {}",
            record.path,
            record.reason.as_deref().unwrap_or("理由不明")
        );
    }
    let count = |status| records.iter().filter(|r| r.status == status).count();
    let counts: Vec<String> = statuses
        .iter()
        .map(|&s| format!("{} {}", s.label(), count(s)))
        .collect();
    let sum = |field: fn(&Record) -> Option<u64>| records.iter().filter_map(field).sum::<u64>();
    let (lines, chars, bytes) = (sum(|r| r.lines), sum(|r| r.chars), sum(|r| r.bytes));
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!("{}（{}項目）", counts.join("、"), records.len());
    eprintln!(
        "{lines}行・{chars}文字・{bytes}バイトを{secs:.2}秒で処理しました（{:.1}MB/s）",
        bytes as f64 / 1e6 / secs
    );
    Ok(count(Status::Failed))
}
// ANCHOR_END: report

#[cfg(test)]
mod tests {
    use super::*;

    /// どこで読み込みが区切られても、CRLFの変換と数え方は変わらない
    #[test]
    fn crlf_split_anywhere_gives_the_same_text() {
        let input = "a\r\nb\rc\r\n\r\nd\r";
        let whole = {
            let (mut crlf, mut out) = (CrLf::default(), String::new());
            crlf.convert(input, &mut out);
            crlf.finish(&mut out);
            assert_eq!(crlf.count, 3);
            out
        };
        assert_eq!(whole, "a\nb\rc\n\nd\r");
        for i in 0..=input.len() {
            let (mut crlf, mut out) = (CrLf::default(), String::new());
            crlf.convert(&input[..i], &mut out);
            crlf.convert("", &mut out);
            crlf.convert(&input[i..], &mut out);
            crlf.finish(&mut out);
            assert_eq!(out, whole, "split at {i}");
            assert_eq!(crlf.count, 3, "split at {i}");
        }
    }

    #[test]
    fn lines_and_newline_kinds() {
        let mut info = TextInfo::default();
        info.count("一行目\n二行目");
        assert_eq!((info.lines(), info.chars, info.newline()), (2, 7, "LF"));
        info.crlf = 1;
        assert_eq!(info.newline(), "CRLF");
        assert_eq!(TextInfo::default().lines(), 0);
    }

    #[test]
    fn cp932_is_accepted_as_a_label() {
        assert_eq!(parse_encoding("CP932"), Ok(SHIFT_JIS));
        assert_eq!(parse_encoding("euc-jp"), Ok(EUC_JP));
        assert!(parse_encoding("no-such-encoding").is_err());
    }
}

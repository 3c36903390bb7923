//! コマンドラインの引数。時間は`humantime`（`500ms`、`1m30s`）、大きさは`bytesize`（`5MiB`）で読みます

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser};

// ANCHOR: cli
/// 複数のサイトを同時に、行儀よく取得し、URLごとの情報をJSON Linesで書き出します。
#[derive(Parser)]
#[command(name = "scrape", version)]
pub struct Cli {
    /// 取得を始めるURL（複数指定可）
    #[arg(value_name = "URL", required_unless_present = "input")]
    pub(crate) urls: Vec<String>,
    /// 開始URLを1行に1つ書いたファイル（`-`なら標準入力）。空行と`#`で始まる行は読み飛ばします
    #[arg(short, long, value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,
    /// 結果を書くファイル（既定: 標準出力）
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) limits: Limits,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

/// `-v`と`-q`: ログの詳しさ。ログは`tracing`で標準エラーに出します
#[derive(Args)]
pub struct Verbosity {
    /// ログを詳しくします（`-v`でやり直しやリダイレクト、`-vv`ですべてのリクエスト）
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// 最後の要約と警告を出しません（エラーだけ）
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

impl Verbosity {
    /// `tracing`のログを標準エラーに出す設定をします。`RUST_LOG`があれば、そちらが優先です
    pub fn init_logging(&self) {
        let level = match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, _) => "debug",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!("scraper_tool={level}"))
        });
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .init();
    }
}

/// 取得の範囲と仕方の設定。すべてのタスクが共有します
#[derive(Args)]
pub(crate) struct Limits {
    /// 同じホストの中でリンクをたどる深さ（0なら開始URLだけ）
    #[arg(short, long, default_value_t = 0, value_name = "N")]
    pub(crate) depth: u32,
    /// ページの総数がこの数になるまで、たどって見つけたページを加えます（開始URLは必ず取得します）
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub(crate) max_pages: usize,
    /// 同時に送るリクエストの数の上限（全体）
    #[arg(short, long, default_value = "16", value_name = "N")]
    pub(crate) concurrency: NonZeroUsize,
    /// 1つのホストへ同時に送るリクエストの数の上限
    #[arg(long, default_value = "2", value_name = "N")]
    pub(crate) per_host: NonZeroUsize,
    /// 同じホストへのリクエストを始める最小の間隔（robots.txtのCrawl-delayが長ければそちら）
    #[arg(long, default_value = "100ms", value_parser = parse_duration, value_name = "TIME")]
    pub(crate) delay: Duration,
    /// 1回のリクエストのタイムアウト（接続から本文の最後まで）
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "TIME")]
    pub(crate) timeout: Duration,
    /// 一時的な失敗（接続エラー、タイムアウト、408、429、5xx）をやり直す回数
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub(crate) retries: u32,
    /// 最初のやり直しまでに待つ時間。やり直すたびに2倍にし、最大50%のジッターを足します
    #[arg(long, default_value = "500ms", value_parser = parse_duration, value_name = "TIME")]
    pub(crate) backoff: Duration,
    /// 1ページの本文として読む最大のバイト数。超えた分は読まずに接続を切ります
    #[arg(long, default_value = "5MiB", value_parser = parse_size, value_name = "SIZE")]
    pub(crate) max_bytes: usize,
    /// 名乗るUser-Agent。robots.txtの規則は、最初の`/`より前（既定では`scrape`）で選びます
    #[arg(long, default_value = concat!("scrape/", env!("CARGO_PKG_VERSION")), value_name = "UA")]
    pub(crate) user_agent: String,
}

/// `250ms`、`10s`、`1m30s`のような時間を読みます（`humantime`の書き方。単位は省けません）
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("時間として読めません: {text}（例: 500ms、10s、1m30s。{e}）"))
}

/// `5MiB`、`512KiB`、`1000000`のような大きさを読みます（`bytesize`の書き方）
pub(crate) fn parse_size(text: &str) -> Result<usize, String> {
    let size: bytesize::ByteSize = text
        .trim()
        .parse()
        .map_err(|e| format!("大きさとして読めません: {text}（例: 5MiB、512KiB。{e}）"))?;
    usize::try_from(size.as_u64()).map_err(|_| format!("大きすぎます: {text}"))
}
// ANCHOR_END: cli

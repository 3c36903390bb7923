//! コマンドライン引数とログの設定

use std::io::{self, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::rules::parse_duration;

// ANCHOR: cli
#[derive(Parser, Debug)]
#[command(
    version,
    about = "システムのリソースを定期的に測り、ルールに従って警告を出します"
)]
pub struct Cli {
    /// 警告のルールを書いたTOMLファイル
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// 測る間隔（例: 1s、500ms、1m）
    #[arg(short, long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Prometheusの/metricsを配信するアドレス（例: 127.0.0.1:9184）
    #[arg(short, long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// JSON Linesを追記するファイル（省略すると標準出力）
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// 警告だけでなく、サンプルもJSON Linesに書く
    #[arg(long)]
    pub samples: bool,
    /// 警告をJSONでPOSTするURL（ログにはスキームとホストだけを出します）
    #[arg(long, value_name = "URL")]
    pub webhook: Option<reqwest::Url>,
    /// 発火中の警告をwebhookへ送り直す間隔（Alertmanagerのrepeat_interval）
    #[arg(long, value_name = "DURATION", default_value = "4h", value_parser = parse_duration)]
    pub repeat_interval: Duration,
    /// 1回の測定の時間制限。応答しないマウントがあっても、ほかの測定と警告を止めません
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub sample_timeout: Duration,
    /// 止めるとき、出力の残りを書き終えるのを待つ上限。読まれないパイプに書いていても、これを過ぎたら終わります
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub flush_timeout: Duration,
    /// 警告に書くマシンの名前（省略するとホスト名）
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// 記録する、CPUとメモリを多く使うプロセスの数
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub top: usize,
    /// N回測ったら終わる（省略するとCtrl-Cまで続ける）
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// 測る代わりに、--samplesで記録したJSON Linesを読んでルールを当てる
    #[arg(long, value_name = "FILE", conflicts_with = "count")]
    pub replay: Option<PathBuf>,
    /// 設定ファイルを検査して、ルールの一覧を表示して終わる
    #[arg(long)]
    pub check: bool,
    /// ログを詳しくする（debug）
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// 警告とエラーのログだけを出す
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
}

pub(crate) fn parse_interval(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d < Duration::from_millis(10) => Err("間隔は10ms以上にします".to_string()),
        d => Ok(d),
    }
}
// ANCHOR_END: cli

/// ログの詳しさ: 既定はinfo、`-v`でdebug、`-q`でwarn以上だけ。`RUST_LOG`があれば、そちらが優先です
pub fn init_tracing(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(io::stderr().is_terminal())
        .with_writer(io::stderr)
        .init();
}

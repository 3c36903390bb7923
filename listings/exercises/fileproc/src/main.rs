//! 練習問題2の解答例: テキストファイルの木を並列に処理するツール`fileproc`です。
//!
//! 実行例: `cargo run -p fileproc -- convert 原稿 出力 --dry-run`
//!
//! どのファイルも同じディレクトリの一時ファイルに書いてから名前を変えるので、途中で止まっても
//! 書きかけのファイルは残りません。失敗したファイルがあれば、ほかのファイルは最後まで処理したうえで
//! 終了コード1で終わります（使い方の誤りなど、始められなかったときは2、Ctrl-Cで止めたときは130です）。

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::Parser;
use fileproc::{Cli, run, stop};
use tracing::Level;
use tracing_subscriber::EnvFilter;

// ANCHOR: main
fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    if let Err(error) = stop::install_handler() {
        tracing::warn!("Ctrl-Cで止める準備ができません: {error}");
    }
    match run(cli) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(error) => {
            eprintln!("fileproc: {error}");
            ExitCode::from(2)
        }
    }
}

/// `-q`はエラーだけ、既定は警告まで、`-v`で処理の概要、`-vv`でファイルごとのログ
fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => Level::ERROR,
        (false, 0) => Level::WARN,
        (false, 1) => Level::INFO,
        (false, 2) => Level::DEBUG,
        (false, _) => Level::TRACE,
    };
    // 詳しいログはこのクレートのものだけにします（ignoreやglobsetのデバッグログは出しません）。
    let filter = EnvFilter::new(format!("warn,fileproc={level}"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}
// ANCHOR_END: main

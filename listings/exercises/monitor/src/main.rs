//! `monitor`コマンドの入り口。中身は`monitor`ライブラリにあります（`src/lib.rs`）

use std::process::ExitCode;

use clap::Parser;
use monitor::Cli;

// ANCHOR: main
fn main() -> ExitCode {
    let cli = Cli::parse();
    monitor::init_tracing(cli.verbose, cli.quiet);
    // 設定ファイルは、何かを起動する前に読んで検査します
    let rules = match &cli.config {
        Some(path) => match monitor::load_rules(path) {
            Ok(rules) => rules,
            Err(e) => {
                eprintln!("エラー: {e:#}");
                return ExitCode::from(2);
            }
        },
        None => Vec::new(),
    };
    if cli.check {
        monitor::print_rules(cli.config.as_deref(), &rules);
        return ExitCode::SUCCESS;
    }
    match monitor::block_on(monitor::run(cli, rules)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
// ANCHOR_END: main

//! `scrape`コマンドの入り口。中身は`scraper_tool`ライブラリにあります（`src/lib.rs`）

use std::process::ExitCode;

use clap::Parser;
use scraper_tool::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.verbosity.init_logging();
    match scraper_tool::run(cli).await {
        Ok(summary) => summary.exit_code(),
        Err(e) => {
            eprintln!("scrape: {e}");
            ExitCode::from(2)
        }
    }
}

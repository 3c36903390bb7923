//! 練習問題5の解答例: タスクを複数のワーカープロセスに分散して実行するディスパッチャ。
//!
//! 実行方法:
//!   cargo run -p balancer -- --demo                          組み込みのサンプルタスクを流す
//!   cargo run -p balancer -- tasks.jsonl                     ファイルのタスクを流す
//!   printf '{"id":1,"cpu":1000}\n' | cargo run -p balancer   標準入力のタスクを流す
//!   cargo run -p balancer -- --demo -- python3 listings/exercises/balancer/examples/worker.py
//!                                                            Pythonのワーカーに実行させる
//! タスクは1行1つのJSON（JSON Lines）です。結果も1タスク1行のJSONで標準出力に出て、
//! ログと最後の集計は標準エラー出力に出ます。Ctrl-C（またはSIGTERM、SIGHUP）で新しいタスクを止め、
//! 実行中のものを待ってから終わります。終了ステータスは失敗したタスクの数です（`--help`を参照）。

use std::fs::File;
use std::io::{self, BufRead};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio::sync::mpsc;
use tracing::error;

use balancer::cli::{self, Cli, Mode, RunArgs};
use balancer::dispatcher::{self, Summary};
use balancer::input::{DEMO, spawn_reader};
use balancer::worker::{self, Spawn, WorkerCommand};

// ANCHOR: main
fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `--help`と`--version`は0で、引数の誤りは255で終わります（1〜101は失敗の数なので使いません）
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 255 } else { 0 });
        }
    };
    if let Some(Mode::Worker) = cli.mode {
        return match worker::main() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("balancer worker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let progress = cli::progress_bar();
    cli::init_logging(cli.run.log_level(), progress.clone());
    // ディスパッチャの処理は待つことだけなので、スレッド1つのランタイムで足ります。
    // ワーカーをメインスレッドから起動することは、`PR_SET_PDEATHSIG`の前提でもあります
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            error!("ランタイムを作れません: {e}");
            return ExitCode::from(255);
        }
    };
    let started = std::time::Instant::now();
    let result = runtime.block_on(run(&cli.run, progress.clone()));
    progress.finish_and_clear();
    match result {
        Ok(summary) => {
            if cli.run.quiet == 0 {
                cli::print_summary(&summary, started.elapsed());
            }
            ExitCode::from(summary.exit_code())
        }
        Err(e) => {
            error!("{e:#}");
            ExitCode::from(255)
        }
    }
}

async fn run(args: &RunArgs, progress: indicatif::ProgressBar) -> anyhow::Result<Summary> {
    let source: Box<dyn BufRead + Send> = match &args.file {
        _ if args.demo => Box::new(io::Cursor::new(DEMO)),
        Some(path) if path.as_os_str() != "-" => {
            let file =
                File::open(path).with_context(|| format!("{}を開けません", path.display()))?;
            Box::new(io::BufReader::new(file))
        }
        _ => Box::new(io::BufReader::new(io::stdin())),
    };
    let spawner: Box<dyn Spawn> = match args.command.split_first() {
        None => Box::new(WorkerCommand::builtin()?),
        Some((program, rest)) => Box::new(WorkerCommand::new(program.clone(), rest.to_vec())),
    };
    let (input_tx, input) = mpsc::channel(16);
    spawn_reader(source, input_tx);
    let signals = dispatcher::listen_for_signals()?;
    let output = Box::new(tokio::io::stdout());
    let summary = dispatcher::dispatch(args.config(), spawner, input, signals, output, progress)
        .await
        .context("ワーカーを起動できません")?;
    Ok(summary)
}
// ANCHOR_END: main

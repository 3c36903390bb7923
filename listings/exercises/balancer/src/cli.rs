//! 道具としての顔: コマンドライン引数、進捗表示、ログ、最後の集計。

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};

use crate::dispatcher::{Config, Summary};
use crate::strategy::Strategy;

// ANCHOR: cli
const AFTER_HELP: &str = "\
ワーカー:
  -- のあとにコマンドを書くと、組み込みのワーカーの代わりにそのコマンドを起動します
  （例: balancer tasks.jsonl -- python3 worker.py）。ワーカーは標準入力からタスクを1行ずつ読み、
  渡された順に実行して、1タスクにつき {\"id\":…,\"value\":…} か {\"id\":…,\"error\":\"…\"} を
  1行書いてflushします。標準入力が閉じたら終了します。標準エラー出力はログに出ます。

終了ステータス（GNU parallelにならいます）:
  0        すべてのタスクが完了しました
  1〜100   失敗したタスクと、誤った入力の行の数
  101      失敗が100件を超えました
  129 130 143  SIGHUP、SIGINT（Ctrl-C）、SIGTERMで中断しました（128＋シグナルの番号）
  255      そのほかのエラー（引数の誤り、入力を開けない、ワーカーを起動できない、結果を書けない）";

#[derive(Parser)]
#[command(
    version,
    about = "タスク（JSON Lines）を複数のワーカープロセスに分散して実行します",
    after_help = AFTER_HELP
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub mode: Option<Mode>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand)]
pub enum Mode {
    /// 組み込みのワーカーとして動きます（ディスパッチャが内部で使います）
    #[command(hide = true)]
    Worker,
}

#[derive(Args)]
pub struct RunArgs {
    /// タスクのファイル（JSON Lines）。省略するか`-`なら標準入力から読みます
    pub file: Option<PathBuf>,
    /// 入力の代わりに、組み込みのサンプルタスクを流します
    #[arg(long, conflicts_with = "file")]
    pub demo: bool,
    /// ワーカープロセスの数
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,
    /// 分散の方法
    #[arg(short, long, value_enum, default_value_t = Strategy::LeastOutstanding)]
    pub strategy: Strategy,
    /// 1つのワーカーに同時に渡しておけるタスクの数
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub in_flight: u32,
    /// 1つのタスクの時間制限（例: 500ms、10s、2m）。過ぎたらワーカーを殺して再起動します
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// ワーカーを落としたタスクを何回まで試すか。超えたら失敗として報告します
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// ログを詳しくします（-vでdebug、-vvでtrace）
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// ログを減らします（-qで警告とエラーだけ、-qqでエラーだけ）
    #[arg(short, long, action = ArgAction::Count)]
    pub quiet: u8,
    /// ワーカーとして起動するコマンドと引数（`--`のあとに書きます）。省略すると組み込みのワーカー
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// `humantime`の書式の時間（`1h 30m`、`250ms`など）。0は受け付けません。
fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("0より長い時間を指定してください".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

impl RunArgs {
    pub fn config(&self) -> Config {
        Config {
            workers: self.workers as usize,
            strategy: self.strategy,
            in_flight: self.in_flight as usize,
            timeout: self.timeout,
            max_attempts: self.max_attempts,
        }
    }

    /// `-v`と`-q`から決めたログの詳しさ。環境変数`RUST_LOG`があれば、そちらが優先です。
    pub fn log_level(&self) -> LevelFilter {
        match (self.verbose, self.quiet) {
            (0, 0) => LevelFilter::INFO,
            (1, _) => LevelFilter::DEBUG,
            (_, 0) => LevelFilter::TRACE,
            (_, 1) => LevelFilter::WARN,
            _ => LevelFilter::ERROR,
        }
    }
}
// ANCHOR_END: cli

// ANCHOR: output
/// 端末に出すときだけ進捗を表示します。パイプやファイルへ出すときは隠します。
pub fn progress_bar() -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let progress = ProgressBar::new_spinner();
    let style = ProgressStyle::with_template("{spinner} {elapsed} 報告したタスク {pos}件")
        .expect("the template is valid");
    progress.set_style(style);
    progress.enable_steady_tick(Duration::from_millis(100));
    progress
}

/// ログは標準エラー出力へ（標準出力は結果のJSON Lines専用です）。
pub fn init_logging(level: LevelFilter, progress: ProgressBar) {
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(io::stderr().is_terminal())
        // 進捗表示と同じ端末に書くので、1行書くあいだだけ進捗表示を消します
        .with_writer(move || ProgressWriter(progress.clone()))
        .init();
}

struct ProgressWriter(ProgressBar);

impl Write for ProgressWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.suspend(|| io::stderr().write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// 最後の集計を標準エラー出力に書きます（`-q`のときは書きません）。
pub fn print_summary(summary: &Summary, elapsed: Duration) {
    let Summary {
        completed,
        failed,
        invalid,
        requeued,
        interrupted,
        workers,
        ..
    } = summary;
    eprintln!(
        "完了 {completed}件、失敗 {failed}件、誤った入力 {invalid}行、渡し直し {requeued}回（{elapsed:.2?}）"
    );
    for (i, (tasks, restarts)) in workers.iter().enumerate() {
        eprintln!("  ワーカー{i}: 完了 {tasks}件、再起動 {restarts}回");
    }
    if interrupted.is_some() {
        eprintln!("中断したため、読んでいない入力が残っている可能性があります");
    }
}
// ANCHOR_END: output

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_worker_command_follows_the_double_dash() {
        let cli = Cli::try_parse_from([
            "balancer",
            "-w",
            "2",
            "--timeout",
            "1m 30s",
            "tasks.jsonl",
            "--",
            "python3",
            "worker.py",
            "-v",
        ])
        .unwrap();
        assert_eq!(cli.run.file, Some(PathBuf::from("tasks.jsonl")));
        assert_eq!(cli.run.timeout, Duration::from_secs(90));
        // `--`のあとの`-v`はワーカーへの引数です
        assert_eq!(cli.run.command, ["python3", "worker.py", "-v"]);
        assert_eq!(cli.run.verbose, 0);
        assert!(Cli::try_parse_from(["balancer", "--timeout", "0s"]).is_err());
        assert!(Cli::try_parse_from(["balancer", "--timeout", "soon"]).is_err());
    }

    #[test]
    fn the_help_documents_the_exit_status() {
        let help = Cli::command().render_help().to_string();
        assert!(
            help.contains("終了ステータス（GNU parallelにならいます）"),
            "{help}"
        );
        assert!(help.contains("101      失敗が100件を超えました"), "{help}");
    }
}

//! 全体の流れ: 木を並列に歩きながら処理し、報告を1つの書き手に送ります。

use std::error::Error;
use std::fs;
use std::io::{self, BufWriter};
use std::num::NonZeroUsize;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

use crate::cli::{Cli, Command, Format};
use crate::convert::{ConvertOptions, convert_file};
use crate::failure::Failure;
use crate::record::{CONVERT, Record, STATS, Status};
use crate::report::{self, CHANNEL_CAPACITY, Summary};
use crate::stats::stats_file;
use crate::stop;
use crate::target::Target;
use crate::walk::{Item, ItemKind, WalkOptions, remove_leftovers, walk};

/// 実行の結果
pub struct Outcome {
    pub summary: Summary,
    /// Ctrl-Cなどで途中で止めた
    pub interrupted: bool,
    /// `--check`で、変換の要るファイルが見つかった
    pub needs_conversion: bool,
}

impl Outcome {
    /// 0: すべて成功、1: 失敗したファイルがある（`--check`なら、変換の要るファイルもある）、130: 中断
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            130
        } else if self.summary.count(Status::Failed) > 0 || self.needs_conversion {
            1
        } else {
            0
        }
    }
}

// ANCHOR: run
/// 全体を実行する。始めることもできなければ（使い方の誤りなど）`Err`
pub fn run(cli: Cli) -> Result<Outcome, Box<dyn Error>> {
    let jobs = match cli.jobs {
        Some(jobs) => jobs.get(),
        None => thread::available_parallelism().map_or(1, NonZeroUsize::get),
    };
    let mut walk_options = WalkOptions::new(&cli.include, &cli.exclude)?;
    walk_options.hidden = cli.hidden;
    walk_options.no_ignore = cli.no_ignore;
    walk_options.max_size = cli.max_size;
    let started = Instant::now();
    let (summary, statuses, check, dry_run) = match cli.command {
        Command::Stats { dir } => {
            ensure_dir(&dir)?;
            info!("{}を{jobs}個のスレッドで調べます", dir.display());
            let summary = pipeline(cli.format, cli.quiet, |send| {
                walk(&dir, &walk_options, jobs, |item| {
                    send(process(item, |rel| stats_file(&dir, rel, cli.from)));
                });
            })?;
            (summary, STATS, false, false)
        }
        Command::Convert {
            src,
            dst,
            dry_run,
            check,
            force,
            to,
            eol,
            ..
        } => {
            let target = Target::new(src, dst)?;
            ensure_dir(&target.src)?;
            let options = ConvertOptions {
                from: cli.from,
                to,
                eol,
                dry_run: dry_run || check,
                force,
            };
            if !options.dry_run && target.written_root().is_dir() {
                remove_leftovers(target.written_root(), &walk_options)?;
            }
            info!("{}を{jobs}個のスレッドで変換します", target.src.display());
            let summary = pipeline(cli.format, cli.quiet, |send| {
                walk(&target.src, &walk_options, jobs, |item| {
                    send(process(item, |rel| convert_file(&target, &options, rel)));
                });
            })?;
            (summary, CONVERT, check, options.dry_run)
        }
    };
    let outcome = Outcome {
        interrupted: stop::requested(),
        needs_conversion: check && summary.count(Status::Converted) > 0,
        summary,
    };
    if !cli.quiet {
        outcome.summary.print(statuses, started.elapsed());
        if dry_run {
            eprintln!("何も書き込んでいません（--dry-run、--check）");
        }
    }
    if outcome.interrupted {
        eprintln!("中断しました。書き換えたファイルは、すべて報告に出ています");
    } else if outcome.needs_conversion {
        let n = outcome.summary.count(Status::Converted);
        eprintln!("--check: 変換の要るファイルが{n}個あります");
    }
    Ok(outcome)
}

fn ensure_dir(dir: &Path) -> Result<(), String> {
    let meta = fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{}はディレクトリではありません", dir.display()));
    }
    Ok(())
}

/// 1項目を報告の1行にする。失敗は`Err`のまま外へ出さず、理由を書いた1行になる
fn process(item: Item, job: impl FnOnce(&Path) -> Result<Record, Failure>) -> Record {
    match item.kind {
        ItemKind::File => job(&item.rel)
            .unwrap_or_else(|failure| Record::new(&item.rel, Status::Failed).because(failure)),
        ItemKind::Skip(reason) => Record::new(&item.rel, Status::Skipped).because(reason),
        ItemKind::Error(error) => Record::new(&item.rel, Status::Failed).because(error),
    }
}
// ANCHOR_END: run

// ANCHOR: pipeline
/// `produce`がワーカーのスレッドから`send`で送る報告を、書き手のスレッドが1つずつ書く
fn pipeline(
    format: Format,
    quiet: bool,
    produce: impl FnOnce(&(dyn Fn(Record) + Sync)),
) -> io::Result<Summary> {
    let (sender, receiver) = crossbeam_channel::bounded(CHANNEL_CAPACITY);
    let progress = progress_bar(quiet);
    let summary = thread::scope(|scope| {
        let progress = &progress;
        let writer = scope.spawn(move || {
            let out = BufWriter::new(io::stdout().lock());
            report::write_records(receiver, format, out, progress)
        });
        produce(&|record| {
            // 書き手が止まった（標準出力に書けない）なら、報告できない処理は続けません。
            if sender.send(record).is_err() {
                stop::request();
            }
        });
        drop(sender); // これで書き手のループが終わる
        writer.join().expect("書き手のスレッドはパニックしない")
    });
    progress.finish_and_clear();
    summary
}

/// 端末なら、処理したファイルの数を数えるスピナー。パイプやCIでは何も描かない
fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}ファイル 経過{elapsed} {per_sec}")
            .expect("テンプレートは正しい"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
// ANCHOR_END: pipeline

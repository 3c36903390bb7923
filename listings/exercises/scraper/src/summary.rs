//! 最後に標準エラーへ出す要約と終了コード、進み具合の表示

use std::collections::HashMap;
use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

use crate::record::{Outcome, Record};

// ANCHOR: summary
/// 最後に標準エラーへ出す要約と、終了コード
pub struct Summary {
    pub(crate) counts: HashMap<Outcome, usize>,
    /// 読んだHTMLの本文のバイト数
    pub(crate) bytes: u64,
    /// 取得できなかった開始URLと、その理由
    pub(crate) failed_starts: Vec<String>,
    pub(crate) interrupted: bool,
    pub(crate) started: Instant,
}

impl Summary {
    pub(crate) fn new() -> Self {
        Summary {
            counts: HashMap::new(),
            bytes: 0,
            failed_starts: Vec::new(),
            interrupted: false,
            started: Instant::now(),
        }
    }

    pub(crate) fn add(&mut self, record: &Record, start: bool) {
        *self.counts.entry(record.outcome).or_default() += 1;
        if record.outcome == Outcome::Page {
            self.bytes += record.bytes.unwrap_or(0);
        }
        let failed = matches!(
            record.outcome,
            Outcome::HttpError | Outcome::Error | Outcome::Blocked
        );
        if start && failed {
            let why = record.error.as_deref().unwrap_or("");
            self.failed_starts.push(format!("{}（{why}）", record.url));
        }
    }

    pub(crate) fn print(&self) {
        let count = |outcome| self.counts.get(&outcome).copied().unwrap_or(0);
        let total: usize = self.counts.values().sum();
        let seconds = self.started.elapsed().as_secs_f64();
        if self.interrupted {
            eprintln!("Ctrl-Cで中断しました。それまでの結果は書き出してあります");
        }
        eprintln!(
            "{total}件: ページ {}、ファイル {}、リダイレクト {}、HTTPエラー {}、失敗 {}、robots.txtで除外 {}",
            count(Outcome::Page),
            count(Outcome::File),
            count(Outcome::Redirect),
            count(Outcome::HttpError),
            count(Outcome::Error),
            count(Outcome::Blocked),
        );
        eprintln!(
            "HTML {}バイトを{seconds:.2}秒で取得しました（{:.1}件/秒）",
            self.bytes,
            total as f64 / seconds.max(f64::EPSILON)
        );
        for failed in &self.failed_starts {
            eprintln!("取得できなかった開始URL: {failed}");
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        if self.interrupted {
            ExitCode::from(130) // シェルの慣習: 128 + SIGINT(2)
        } else if self.failed_starts.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }
}

/// 進み具合の表示。標準エラーが端末でなければ（パイプやファイル、テスト）何も描きません
pub(crate) fn progress_bar() -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{spinner} {elapsed} [{bar:30}] {pos}/{len} {wide_msg}")
            .expect("固定のテンプレートは正しい")
            .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}
// ANCHOR_END: summary

//! 測定、記録の再生、評価、書き出しのタスク

use std::collections::VecDeque;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task;
use tokio::time::{self, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::field::display;
use tracing::{error, info, warn};

use crate::engine::{Alert, AlertState, Engine};
use crate::metrics::Stats;
use crate::rules::Severity;
use crate::sample::{Sample, Sampler};
use crate::webhook::Notifier;

// ANCHOR: sample_loop
/// tokioの`Instant`をUNIX時間のミリ秒に直す時計。壁時計（`SystemTime`）は途中で合わせ直されることがあるので、
/// 起動したときに一度だけ読み、あとは単調な`Instant`の経過時間を足します。
#[derive(Clone, Copy)]
struct Clock {
    start: Instant,
    epoch_ms: u64,
}

impl Clock {
    fn start() -> Self {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            start: Instant::now(),
            epoch_ms: epoch.as_millis() as u64,
        }
    }

    fn millis_at(&self, t: Instant) -> u64 {
        self.epoch_ms + t.duration_since(self.start).as_millis() as u64
    }
}

/// 測定のタスク: `every`ごとにサンプルを作り、評価のタスクと/metricsに渡します。
/// `count`回測るか、`stop`がキャンセルされたら終わります。
///
/// 1回の測定には`limit`の時間制限があります。止まったNFSのマウントの`statvfs`のように、
/// OSの呼び出しが返ってこないと、測定のスレッドはそこで止まったままになります。そのときは
/// 待たずに次の周期へ進み（その周期のサンプルはありません）、止まった測定が戻ってきたら、
/// サンプラーを受け取り直して続けます。時間切れは`monitor_sample_timeouts_total`で、
/// 最後のサンプルの時刻は`monitor_last_sample_timestamp_seconds`で外から分かります。
#[allow(clippy::too_many_arguments)] // タスクの入力と出力を、呼び出しの場で1つずつ見せるため
pub(crate) async fn sample_loop<S: Sampler>(
    sampler: S,
    every: Duration,
    limit: Duration,
    count: Option<u64>,
    samples: mpsc::Sender<Arc<Sample>>,
    latest: watch::Sender<Option<Arc<Sample>>>,
    stats: Stats,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let clock = Clock::start();
    // 最初の測定は1周期後です。CPU使用率は前回との差なので、すぐに測っても意味のある値になりません
    let mut ticks = time::interval_at(Instant::now() + every, every);
    // 何かの理由で遅れたら、溜まった分をまとめて測らずに次の周期から続けます
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // 手元のサンプラー。時間切れの測定が戻ってくるまでは、そのスレッドが持っています
    let mut idle = Some(sampler);
    let mut busy: Option<task::JoinHandle<(S, Sample)>> = None;
    let mut taken = 0;
    while count.is_none_or(|n| taken < n) {
        let tick = tokio::select! {
            _ = stop.cancelled() => break,
            tick = ticks.tick() => tick,
        };
        if let Some(handle) = busy.take_if(|h| h.is_finished()) {
            idle = Some(handle.await?.0); // 遅れて戻った測定の結果は古いので使いません
        }
        let Some(mut sampler) = idle.take() else {
            warn!("前の測定がまだ終わらないので、この周期は測りません");
            continue;
        };
        let ts = clock.millis_at(tick);
        // sysinfoは/procのファイルを同期的に読むので、ランタイムのスレッドを止めないよう
        // spawn_blockingで実行します。サンプラーはムーブして渡し、結果と一緒に返してもらいます
        let mut handle = task::spawn_blocking(move || {
            let sample = sampler.sample(ts);
            (sampler, sample)
        });
        let sample = match time::timeout(limit, &mut handle).await {
            Ok(joined) => {
                let (back, sample) = joined?;
                idle = Some(back);
                sample
            }
            Err(_) => {
                stats.sample_timeouts.inc();
                warn!(
                    ?limit,
                    "測定が時間内に終わりません（応答しないマウントがあるかもしれません）"
                );
                busy = Some(handle);
                continue;
            }
        };
        let sample = Arc::new(sample);
        stats.samples.inc();
        stats.last_sample_ms.store(sample.ts, Ordering::Relaxed);
        // /metricsは最新の1つだけを見ればよいので、watchで上書きします
        latest.send_replace(Some(Arc::clone(&sample)));
        if samples.send(sample).await.is_err() {
            break; // 評価のタスクが終わった
        }
        taken += 1;
    }
    Ok(())
}
// ANCHOR_END: sample_loop

// ANCHOR: replay
/// JSON Linesの1行。サンプル以外の行（警告）は読み飛ばします。
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum InputLine {
    Sample(Sample),
    #[serde(other)]
    Other,
}

/// 記録したサンプルを、測定のタスクの代わりに流します。時刻はサンプルのtsなので、待たずに流せます。
pub(crate) async fn replay(
    path: PathBuf,
    samples: mpsc::Sender<Arc<Sample>>,
    latest: watch::Sender<Option<Arc<Sample>>>,
    stats: Stats,
) -> anyhow::Result<()> {
    let text = tokio::fs::read_to_string(&path)
        .await
        .with_context(|| format!("{}を読めません", path.display()))?;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let parsed: InputLine = serde_json::from_str(line).with_context(|| {
            format!("{}:{}: サンプルの行として読めません", path.display(), i + 1)
        })?;
        if let InputLine::Sample(sample) = parsed {
            let sample = Arc::new(sample);
            stats.samples.inc();
            stats.last_sample_ms.store(sample.ts, Ordering::Relaxed);
            latest.send_replace(Some(Arc::clone(&sample)));
            if samples.send(sample).await.is_err() {
                break;
            }
        }
    }
    Ok(())
}
// ANCHOR_END: replay

// ANCHOR: evaluate
/// 書き出すレコード
#[derive(Debug)]
pub(crate) enum Record {
    Sample(Arc<Sample>),
    Alert(Alert),
}

/// 評価のタスク: サンプルを受け取ってルールを当て、警告を出力とwebhookに渡します。
/// 状態（`Engine`）はこのタスクだけが持つので、ロックは要りません。
///
/// 書き出しの係（標準出力）が詰まっても、評価は止めません。書き出しのチャネルが満杯なら、
/// サンプルの行は捨てて数え、警告の行は手元の`backlog`に取っておいて、空きができたら送ります。
pub(crate) async fn evaluate(
    mut engine: Engine,
    mut samples: mpsc::Receiver<Arc<Sample>>,
    records: mpsc::Sender<Record>,
    webhook: Option<Notifier>,
    firing: watch::Sender<Vec<Alert>>,
    stats: Stats,
    emit_samples: bool,
) {
    let mut backlog: VecDeque<Alert> = VecDeque::new();
    'samples: while let Some(sample) = samples.recv().await {
        let alerts = engine.observe(&sample);
        for alert in alerts {
            log_alert(&alert);
            let labels = vec![
                ("rule", alert.rule.clone()),
                ("state", alert.state.as_str().to_string()),
            ];
            stats.alerts.get_or_create(&labels).inc();
            if let Some(webhook) = &webhook {
                webhook.notify(alert.clone()); // 待たず、捨てない
            }
            backlog.push_back(alert);
        }
        firing.send_replace(engine.firing());
        // 取っておいた警告から順に、待たずに送れるだけ送ります
        while let Some(alert) = backlog.pop_front() {
            match records.try_send(Record::Alert(alert)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(Record::Alert(alert))) => {
                    backlog.push_front(alert);
                    break;
                }
                Err(_) => break 'samples, // 書き出しの係が終わった
            }
        }
        if emit_samples && backlog.is_empty() {
            match records.try_send(Record::Sample(sample)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    stats.output_dropped.inc();
                }
                Err(_) => break 'samples,
            }
        } else if emit_samples {
            stats.output_dropped.inc();
        }
    }
    if let Some(webhook) = &webhook {
        webhook.close();
    }
    // 最後に、残った警告を書き出します（ここでは待ちます）
    for alert in backlog {
        if records.send(Record::Alert(alert)).await.is_err() {
            return;
        }
    }
}
// ANCHOR_END: evaluate

/// 警告をログにも出します。発火はseverityに合わせた重さで、解決はinfoで出します
fn log_alert(alert: &Alert) {
    // 値が空の系列（CPU全体など）では、targetの欄を出しません
    let target = (!alert.target.is_empty()).then(|| display(&alert.target));
    let (rule, value) = (display(&alert.rule), alert.value);
    match (alert.state, alert.severity) {
        (AlertState::Resolved, _) => info!(rule, target, value, "警告が解決しました"),
        (AlertState::Firing, Severity::Info) => info!(rule, target, value, "警告が発火しました"),
        (AlertState::Firing, Severity::Warning) => warn!(rule, target, value, "警告が発火しました"),
        (AlertState::Firing, Severity::Critical) => {
            error!(rule, target, value, "警告が発火しました")
        }
    }
}

// ANCHOR: writer
/// JSON Linesの1行の形。`"type"`でサンプルと警告を見分けます。
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Line<'a> {
    Sample(&'a Sample),
    Alert(&'a Alert),
}

/// 書き出しの係: 標準出力やファイルへの書き込みはブロックするので、spawn_blockingのスレッドで
/// `blocking_recv`を使って受け取ります。チャネルが空になるたびにflushするので、行がバッファに溜まったままになりません。
pub(crate) fn write_records(
    mut records: mpsc::Receiver<Record>,
    out: Box<dyn Write + Send>,
) -> io::Result<()> {
    let mut out = BufWriter::new(out);
    while let Some(record) = records.blocking_recv() {
        let line = match &record {
            Record::Sample(s) => Line::Sample(s),
            Record::Alert(a) => Line::Alert(a),
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
        if records.is_empty() {
            out.flush()?;
        }
    }
    out.flush()
}
// ANCHOR_END: writer

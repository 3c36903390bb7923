//! プロセスの中で数える値（`Stats`）と、Prometheusの`/metrics`

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::engine::Alert;
use crate::sample::{Disk, Network, Sample};

// ANCHOR: metrics
/// プロセスの中で数え続ける値。`Counter`の中身は`Arc<AtomicU64>`なので、cloneしても同じ値を指します。
#[derive(Clone, Default)]
pub(crate) struct Stats {
    pub(crate) samples: Counter,
    /// 時間内に終わらなかった測定（止まったNFSのマウントなど）
    pub(crate) sample_timeouts: Counter,
    /// 書き出しが詰まっていたので、JSON Linesに書かなかったサンプルの行
    pub(crate) output_dropped: Counter,
    /// 最後に測り終えたサンプルの時刻（UNIX時間のミリ秒）
    pub(crate) last_sample_ms: Arc<AtomicU64>,
    pub(crate) alerts: Family<Labels, Counter>,
    pub(crate) webhook_sent: Counter,
    pub(crate) webhook_retries: Counter,
    pub(crate) webhook_failed: Counter,
}

type Labels = Vec<(&'static str, String)>;
/// 1つの系列の、ラベルと値
type Point = (Labels, f64);
type F64Gauge = Gauge<f64, AtomicU64>;
/// カウンタの系列の、ラベルと値
type CounterPoint = (Labels, u64);

/// /metricsのハンドラが読むもの。最新のサンプルと発火中の警告はwatchチャネルの受信側です。
#[derive(Clone)]
pub(crate) struct MetricsState {
    pub(crate) latest: watch::Receiver<Option<Arc<Sample>>>,
    pub(crate) firing: watch::Receiver<Vec<Alert>>,
    pub(crate) stats: Stats,
    /// これより古いサンプルの値は出しません（古い値を新しい値のように見せないため）。`--replay`ではNone
    pub(crate) stale_after: Option<Duration>,
}

/// Prometheusのテキスト形式を作ります。サンプルの値は読まれるたびに新しい`Registry`に入れるので、
/// 消えたディスクやインターフェースの系列が残り続けることはありません。
fn render_metrics(
    sample: Option<&Sample>,
    firing: &[Alert],
    stats: &Stats,
) -> Result<String, fmt::Error> {
    // （名前, 説明, ラベルと値の組）の表を作ってから、まとめてGaugeやCounterのFamilyにします
    let mut gauges: Vec<(&str, &str, Vec<Point>)> = Vec::new();
    let mut counters: Vec<(&str, &str, Vec<CounterPoint>)> = Vec::new();
    // 最後に測り終えた時刻。止まったマウントで測定が進まないとき、外からは
    // `time() - monitor_last_sample_timestamp_seconds`で分かります
    let last = stats.last_sample_ms.load(Ordering::Relaxed);
    if last > 0 {
        gauges.push((
            "last_sample_timestamp_seconds",
            "When the last sample was taken (UNIX time)",
            vec![(Labels::new(), last as f64 / 1000.0)],
        ));
    }
    if let Some(s) = sample {
        let one = |v: f64| vec![(Labels::new(), v)];
        let core = |(i, v): (usize, &f64)| (vec![("core", i.to_string())], *v);
        let mount = |d: &Disk| vec![("mount", d.mount.clone())];
        let nic = |n: &Network| vec![("interface", n.interface.clone())];
        let (cpu, m) = (&s.cpu, &s.memory);
        gauges.extend([
            (
                "cpu_usage_percent",
                "CPU usage of all cores",
                one(cpu.total_percent),
            ),
            ("cpu_core_usage_percent", "CPU usage of each core", {
                cpu.cores_percent.iter().enumerate().map(core).collect()
            }),
            (
                "memory_total_bytes",
                "Total memory",
                one(m.total_bytes as f64),
            ),
            ("memory_used_bytes", "Used memory", one(m.used_bytes as f64)),
            (
                "swap_total_bytes",
                "Total swap",
                one(m.swap_total_bytes as f64),
            ),
            (
                "swap_used_bytes",
                "Used swap",
                one(m.swap_used_bytes as f64),
            ),
            ("disk_total_bytes", "Size of each mounted file system", {
                s.disks
                    .iter()
                    .map(|d| (mount(d), d.total_bytes as f64))
                    .collect()
            }),
            (
                "disk_available_bytes",
                "Free space of each mounted file system",
                {
                    s.disks
                        .iter()
                        .map(|d| (mount(d), d.available_bytes as f64))
                        .collect()
                },
            ),
        ]);
        // 受信・送信はnode_exporterと同じく、OSのカウンタそのもの（`_bytes_total`）を出します。
        // 毎秒の量は、Prometheusの側で`rate(monitor_network_receive_bytes_total[1m])`と計算します
        counters.extend([
            (
                "network_receive_bytes",
                "Bytes received since boot",
                s.networks
                    .iter()
                    .map(|n| (nic(n), n.rx_bytes_total))
                    .collect(),
            ),
            (
                "network_transmit_bytes",
                "Bytes sent since boot",
                s.networks
                    .iter()
                    .map(|n| (nic(n), n.tx_bytes_total))
                    .collect(),
            ),
        ]);
        if let Some(load) = s.load {
            let periods = ["1m", "5m", "15m"].map(|p| vec![("period", p.to_string())]);
            gauges.push((
                "load_average",
                "Load average",
                periods.into_iter().zip(load).collect(),
            ));
        }
        // プロセスはPIDをラベルにすると系列が際限なく増えるので、/metricsには出しません（JSON Linesには出ます）
    }
    let alert = |a: &Alert| {
        let labels = [("rule", &a.rule), ("target", &a.target)].map(|(k, v)| (k, v.clone()));
        let mut labels = labels.to_vec();
        labels.push(("severity", a.severity.as_str().to_string()));
        (labels, 1.0)
    };
    gauges.push((
        "alerts_firing",
        "Alerts firing now",
        firing.iter().map(alert).collect(),
    ));

    let mut registry = Registry::with_prefix("monitor");
    for (name, help, values) in gauges {
        let family = Family::<Labels, F64Gauge>::default();
        for (labels, value) in values {
            family.get_or_create(&labels).set(value);
        }
        registry.register(name, help, family);
    }
    for (name, help, values) in counters {
        let family = Family::<Labels, Counter>::default();
        for (labels, value) in values {
            family.get_or_create(&labels).inc_by(value);
        }
        registry.register(name, help, family);
    }
    // カウンタはcloneを登録します。中身は共有なので、数え続けた値がそのまま出ます
    for (name, help, counter) in [
        ("samples", "Samples taken", &stats.samples),
        (
            "webhook_sent",
            "Alerts delivered to the webhook",
            &stats.webhook_sent,
        ),
        (
            "webhook_retries",
            "Webhook requests retried",
            &stats.webhook_retries,
        ),
        (
            "webhook_failed",
            "Alerts the webhook refused (4xx other than 429)",
            &stats.webhook_failed,
        ),
        (
            "sample_timeouts",
            "Samples that did not finish in time (a hung mount, say)",
            &stats.sample_timeouts,
        ),
        (
            "output_dropped",
            "Sample lines not written because the output was blocked",
            &stats.output_dropped,
        ),
    ] {
        registry.register(name, help, counter.clone());
    }
    registry.register("alerts", "Alerts fired and resolved", stats.alerts.clone());
    let mut text = String::new();
    prometheus_text::encode(&mut text, &registry)?;
    Ok(text)
}

async fn metrics(State(state): State<MetricsState>) -> impl IntoResponse {
    // borrow()の間はwatchの送信側が待たされるので、Arcとclone()を取ったらすぐに手放します
    let sample = state.latest.borrow().clone();
    let firing = state.firing.borrow().clone();
    // 測定が止まっていたら（応答しないマウントなど）、最後の値を今の値として出しません。
    // 系列が消えるので、Prometheusはその値を「古い」と扱います
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let sample = sample.filter(|s| {
        state
            .stale_after
            .is_none_or(|limit| u128::from(now_ms.saturating_sub(s.ts)) <= limit.as_millis())
    });
    match render_metrics(sample.as_deref(), &firing, &state.stats) {
        Ok(text) => (
            [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        )
            .into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// HTTPのタスク: `stop`がキャンセルされたら、受け付け中の要求を終えてから止まります
pub(crate) async fn serve_metrics(
    listener: TcpListener,
    state: MetricsState,
    stop: CancellationToken,
) -> io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}
// ANCHOR_END: metrics

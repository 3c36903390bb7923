//! 練習問題4の解答例: システムのリソースを定期的に測り、ルールに従って警告を出す監視プログラム。
//!
//! 実行方法:
//!   cargo run -p monitor -- --config listings/exercises/monitor/rules.toml --listen 127.0.0.1:9184
//! 1秒ごとにCPU・メモリ・スワップ・ディスク・ロードアベレージ・ネットワーク・プロセスを測り、
//! ルールの条件が続いたら警告（`"type":"alert"`の行）をJSON Linesで標準出力に書きます。
//! 別の端末で`curl http://127.0.0.1:9184/metrics`を実行すると、Prometheusの形式で最新の値が読めます。
//! ログは標準エラー出力に出ます。Ctrl-C（またはSIGTERM）で片付けてから終わります。
//!
//!   cargo run -p monitor -- --config rules.toml --replay samples.jsonl
//! は、`--samples`で記録したサンプルにルールを当て直します（ルールを試すのに使います）。

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Parser;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use sysinfo::{DiskRefreshKind, Disks, Networks, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task;
use tokio::time::{self, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::field::display;
use tracing::{error, info, warn};

// ANCHOR: sample
/// 1回の測定の結果。JSON Linesの`"type":"sample"`の1行になり、`--replay`で読み戻せます。
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Sample {
    /// 測った時刻（UNIX時間のミリ秒）。ルールの「30秒続いたら」はこの差で測ります
    ts: u64,
    cpu: Cpu,
    memory: Memory,
    /// 1分・5分・15分のロードアベレージ（測れないOSではなし）
    load: Option<[f64; 3]>,
    disks: Vec<Disk>,
    networks: Vec<Network>,
    /// CPU使用率の高いプロセス（上位N個）
    top_cpu: Vec<Process>,
    /// メモリ使用量の多いプロセス（上位N個）
    top_memory: Vec<Process>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cpu {
    /// すべてのコアの平均の使用率（%）
    total_percent: f64,
    /// コアごとの使用率（%）
    cores_percent: Vec<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Memory {
    total_bytes: u64,
    used_bytes: u64,
    swap_total_bytes: u64,
    swap_used_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Disk {
    mount: String,
    /// ファイルシステムの種類（`ext4`、`overlay`、`nfs`など）
    #[serde(default)]
    fs_type: String,
    total_bytes: u64,
    available_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Network {
    interface: String,
    rx_bytes_per_sec: f64,
    tx_bytes_per_sec: f64,
    /// 起動してからの受信・送信の合計（OSのカウンタそのもの）。/metricsにはこちらを出します
    #[serde(default)]
    rx_bytes_total: u64,
    #[serde(default)]
    tx_bytes_total: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Process {
    pid: u32,
    name: String,
    /// 1コアを100%とした使用率（複数のコアを使えば100%を超えます）
    cpu_percent: f64,
    memory_bytes: u64,
}
// ANCHOR_END: sample

// ANCHOR: metric
/// ルールが見る値。1つのメトリックが複数の系列（コアごと、マウントごと…）を持つことがあります。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Metric {
    CpuPercent,
    CoreCpuPercent,
    MemoryPercent,
    SwapPercent,
    DiskPercent,
    Load1,
    Load5,
    Load15,
    NetRxBytesPerSec,
    NetTxBytesPerSec,
}

impl Metric {
    /// 設定ファイルに書く名前（serdeの`rename_all`と同じ）
    fn as_str(self) -> &'static str {
        match self {
            Metric::CpuPercent => "cpu_percent",
            Metric::CoreCpuPercent => "core_cpu_percent",
            Metric::MemoryPercent => "memory_percent",
            Metric::SwapPercent => "swap_percent",
            Metric::DiskPercent => "disk_percent",
            Metric::Load1 => "load1",
            Metric::Load5 => "load5",
            Metric::Load15 => "load15",
            Metric::NetRxBytesPerSec => "net_rx_bytes_per_sec",
            Metric::NetTxBytesPerSec => "net_tx_bytes_per_sec",
        }
    }
}

impl Sample {
    /// `metric`の系列を（対象の名前, 値）の組で返します。CPU全体のように1つしかなければ名前は空です。
    fn series(&self, metric: Metric) -> Vec<(String, f64)> {
        let single = |v: f64| vec![(String::new(), v)];
        match metric {
            Metric::CpuPercent => single(self.cpu.total_percent),
            Metric::CoreCpuPercent => (self.cpu.cores_percent.iter().enumerate())
                .map(|(i, v)| (format!("cpu{i}"), *v))
                .collect(),
            Metric::MemoryPercent => {
                single(percent(self.memory.used_bytes, self.memory.total_bytes))
            }
            // スワップのないマシンでは系列がありません（0%の警告を出さないように）
            Metric::SwapPercent if self.memory.swap_total_bytes == 0 => Vec::new(),
            Metric::SwapPercent => single(percent(
                self.memory.swap_used_bytes,
                self.memory.swap_total_bytes,
            )),
            Metric::DiskPercent => (self.disks.iter())
                .filter(|d| d.total_bytes > 0)
                .map(|d| {
                    let used = d.total_bytes.saturating_sub(d.available_bytes);
                    (d.mount.clone(), percent(used, d.total_bytes))
                })
                .collect(),
            Metric::Load1 | Metric::Load5 | Metric::Load15 => {
                let i = match metric {
                    Metric::Load1 => 0,
                    Metric::Load5 => 1,
                    _ => 2,
                };
                self.load.map(|l| single(l[i])).unwrap_or_default()
            }
            Metric::NetRxBytesPerSec | Metric::NetTxBytesPerSec => (self.networks.iter())
                .map(|n| {
                    let v = match metric {
                        Metric::NetRxBytesPerSec => n.rx_bytes_per_sec,
                        _ => n.tx_bytes_per_sec,
                    };
                    (n.interface.clone(), v)
                })
                .collect(),
        }
    }
}

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        round1(part as f64 * 100.0 / total as f64)
    }
}

/// 小数第1位に丸めます（JSONを読みやすくするためです）
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
// ANCHOR_END: metric

// ANCHOR: sampler
/// サンプルを作るもの。本物はsysinfoでOSから読み、テストでは決まった値を返す偽物に差し替えます。
/// 測定は同期の処理（`/proc`のファイルを読む）なので、`async fn`にはしません。
trait Sampler: Send + 'static {
    fn sample(&mut self, ts: u64) -> Sample;
}

/// sysinfoでOSから値を読むサンプラー
struct SystemSampler {
    system: System,
    disks: Disks,
    networks: Networks,
    top: usize,
    /// ネットワークのバイト数は「前回からの差」なので、前回の時刻で割って毎秒に直します
    last: std::time::Instant,
}

/// プロセスについて読むのはCPUとメモリだけにします（コマンドラインや環境変数は読みません）。
/// Linuxではスレッドもプロセスとして並ぶので、`without_tasks`で外します。
fn process_kind() -> ProcessRefreshKind {
    ProcessRefreshKind::nothing()
        .with_cpu()
        .with_memory()
        .without_tasks()
}

impl SystemSampler {
    fn new(top: usize) -> Result<Self, sysinfo::Error> {
        let mut system = System::new()?;
        // CPUの使用率は2回の測定の差から計算されるので、ここで1回目を測っておきます
        system.refresh_cpu_usage();
        system.refresh_processes_specifics(ProcessesToUpdate::All, true, process_kind());
        Ok(Self {
            system,
            disks: Disks::new_with_refreshed_list()?,
            networks: Networks::new_with_refreshed_list()?,
            top,
            last: std::time::Instant::now(),
        })
    }
}

impl Sampler for SystemSampler {
    fn sample(&mut self, ts: u64) -> Sample {
        let sys = &mut self.system;
        sys.refresh_cpu_usage();
        sys.refresh_memory();
        sys.refresh_processes_specifics(ProcessesToUpdate::All, true, process_kind());
        self.disks
            .refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        self.networks.refresh(true);
        let seconds = self.last.elapsed().as_secs_f64().max(0.001);
        self.last = std::time::Instant::now();

        let mut processes: Vec<Process> = (sys.processes().values())
            .map(|p| Process {
                pid: p.pid().as_u32(),
                name: p.name().to_string_lossy().into_owned(),
                cpu_percent: round1(f64::from(p.cpu_usage())),
                memory_bytes: p.memory(),
            })
            .collect();
        processes.sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent));
        let top_cpu = processes.iter().take(self.top).cloned().collect();
        processes.sort_by_key(|p| std::cmp::Reverse(p.memory_bytes));
        processes.truncate(self.top);

        let mut networks: Vec<Network> = (self.networks.iter())
            .map(|(name, data)| Network {
                interface: name.to_string_lossy().into_owned(),
                rx_bytes_per_sec: round1(data.received() as f64 / seconds),
                tx_bytes_per_sec: round1(data.transmitted() as f64 / seconds),
                rx_bytes_total: data.total_received(),
                tx_bytes_total: data.total_transmitted(),
            })
            .collect();
        networks.sort_by(|a, b| a.interface.cmp(&b.interface));

        Sample {
            ts,
            cpu: Cpu {
                total_percent: round1(f64::from(sys.global_cpu_usage())),
                cores_percent: sys
                    .cpus()
                    .iter()
                    .map(|c| round1(f64::from(c.usage())))
                    .collect(),
            },
            memory: Memory {
                total_bytes: sys.total_memory(),
                used_bytes: sys.used_memory(),
                swap_total_bytes: sys.total_swap(),
                swap_used_bytes: sys.used_swap(),
            },
            load: System::load_average()
                .ok()
                .map(|l| [l.one, l.five, l.fifteen]),
            disks: (self.disks.iter())
                .map(|d| Disk {
                    mount: d.mount_point().to_string_lossy().into_owned(),
                    fs_type: d.file_system().to_string_lossy().into_owned(),
                    total_bytes: d.total_space(),
                    available_bytes: d.available_space(),
                })
                .collect(),
            networks,
            top_cpu,
            top_memory: processes,
        }
    }
}
// ANCHOR_END: sampler

// ANCHOR: config
/// ルールの設定ファイル（TOML）。`[[rule]]`の1つが1つのルールです。
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

/// ファイルに書かれたままのルール。`Spanned`は値がファイルのどこにあったかを覚えていて、
/// 読んだ後の検査でも行番号付きのエラーを出せます。
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: toml::Spanned<String>,
    metric: Metric,
    op: Op,
    threshold: toml::Spanned<f64>,
    /// この期間、条件が続いたら警告する（省略すると1サンプル）
    #[serde(rename = "for", default)]
    hold: Hold,
    /// 解決とみなす値の境目（省略するとthresholdと同じ）。thresholdとの間が不感帯になります
    clear_threshold: Option<toml::Spanned<f64>>,
    /// この期間、clear_thresholdの内側に戻っていたら解決する（省略するとforと同じ）
    clear_for: Option<Hold>,
    #[serde(default)]
    severity: Severity,
    /// 当てる系列の名前（マウントポイント、インターフェース、`cpu0`）のglob。省略するとすべて
    #[serde(default)]
    targets: Vec<toml::Spanned<String>>,
    /// 当てない系列の名前のglob（例: `["veth*", "docker*"]`、`["/snap/*"]`）
    #[serde(default)]
    exclude: Vec<toml::Spanned<String>>,
    /// disk_percentで当てないファイルシステムの種類（例: `["overlay", "tmpfs", "squashfs"]`）
    #[serde(default)]
    exclude_fs_types: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

impl Op {
    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    /// 条件が成り立たないことを表す比較（`>`なら`<=`）
    fn negated(self) -> Op {
        match self {
            Op::Gt => Op::Le,
            Op::Ge => Op::Lt,
            Op::Lt => Op::Ge,
            Op::Le => Op::Gt,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// 条件が続く長さ。`"3 samples"`（連続したサンプルの数）か、`"30s"`・`"500ms"`・`"5m"`（時間）で書きます。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
enum Hold {
    Samples(u32),
    Time(Duration),
}

impl Default for Hold {
    fn default() -> Self {
        Hold::Samples(1)
    }
}

impl TryFrom<String> for Hold {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let t = text.trim();
        let samples = t
            .strip_suffix("samples")
            .or_else(|| t.strip_suffix("sample"));
        if let Some(n) = samples {
            return match n.trim().parse::<u32>() {
                Ok(0) | Err(_) => Err(format!(
                    "\"{text}\"のサンプル数は1以上の整数で書きます（例: \"3 samples\"）"
                )),
                Ok(n) => Ok(Hold::Samples(n)),
            };
        }
        parse_duration(t).map(Hold::Time)
    }
}

/// `"500ms"`、`"30s"`、`"5m"`、`"1h"`を読みます（`--interval`でも使います）
fn parse_duration(text: &str) -> Result<Duration, String> {
    // 時間の書き方は、ほかの練習問題のツールと同じ`humantime`です（`500ms`、`30s`、`5m`、`1h30m`）
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("\"{text}\"は長さとして読めません（{e}）。\"3 samples\"、\"500ms\"、\"30s\"、\"5m\"のように書きます")
    })
}
// ANCHOR_END: config

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::Samples(1) => write!(f, "1 sample"),
            Hold::Samples(n) => write!(f, "{n} samples"),
            Hold::Time(d) => {
                let ms = d.as_millis();
                match ms {
                    _ if ms % 3_600_000 == 0 => write!(f, "{}h", ms / 3_600_000),
                    _ if ms % 60_000 == 0 => write!(f, "{}m", ms / 60_000),
                    _ if ms % 1000 == 0 => write!(f, "{}s", ms / 1000),
                    _ => write!(f, "{ms}ms"),
                }
            }
        }
    }
}

// ANCHOR: rule
/// 検査を通った、実行に使うルール
#[derive(Debug, Clone)]
struct Rule {
    name: String,
    metric: Metric,
    op: Op,
    threshold: f64,
    clear_threshold: f64,
    hold: Hold,
    clear_hold: Hold,
    severity: Severity,
    /// どの系列に当てるか（`targets`と`exclude`のglob、`exclude_fs_types`）
    filter: TargetFilter,
}

/// ルールを当てる系列の選び方
#[derive(Debug, Clone, Default)]
struct TargetFilter {
    include: Option<globset::GlobSet>,
    exclude: Option<globset::GlobSet>,
    exclude_fs_types: Vec<String>,
}

impl TargetFilter {
    fn accepts(&self, target: &str) -> bool {
        self.include.as_ref().is_none_or(|set| set.is_match(target))
            && !self
                .exclude
                .as_ref()
                .is_some_and(|set| set.is_match(target))
    }
}

/// globの一覧を1つの集合にします。書き誤りは、その位置を指すエラーにします
fn glob_set(
    globs: &[toml::Spanned<String>],
    err: &dyn Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<Option<globset::GlobSet>, ConfigError> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut set = globset::GlobSetBuilder::new();
    for glob in globs {
        let parsed = globset::Glob::new(glob.get_ref())
            .map_err(|e| err(glob.span(), format!("globとして読めません: {e}")))?;
        set.add(parsed);
    }
    set.build()
        .map(Some)
        .map_err(|e| err(globs[0].span(), e.to_string()))
}

/// 設定ファイルの誤り。エディタやコンパイラと同じ`ファイル:行:列: 理由`の形で表示します。
#[derive(Debug)]
struct ConfigError {
    path: String,
    line: usize,
    column: usize,
    message: String,
    source_line: String,
    /// 下線（^）の長さ
    width: usize,
}

impl ConfigError {
    /// `span`（ファイルの先頭からのバイト位置）を行と列に直します
    fn at(
        path: &str,
        text: &str,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        let start = span.start.min(text.len());
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = text[line_start..start].chars().count() + 1;
        let source_line = text[line_start..].lines().next().unwrap_or("").to_string();
        let end = span.end.clamp(start, line_start + source_line.len());
        let width = text[start..end].chars().count().max(1);
        Self {
            path: path.to_string(),
            line,
            column,
            message: message.into(),
            source_line,
            width,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            path,
            line,
            column,
            message,
            source_line,
            width,
        } = self;
        writeln!(f, "{path}:{line}:{column}: {message}")?;
        let pad = " ".repeat(line.to_string().len());
        writeln!(f, "{pad} |")?;
        writeln!(f, "{line} | {source_line}")?;
        write!(
            f,
            "{pad} | {}{}",
            " ".repeat(column - 1),
            "^".repeat(*width)
        )
    }
}

impl std::error::Error for ConfigError {}

/// TOMLを読み、ルールを検査します。最初に見つかった誤りを位置付きで返します。
fn parse_rules(path: &str, text: &str) -> Result<Vec<Rule>, ConfigError> {
    // 文法の誤りも、型の誤り（知らないメトリックなど）も、tomlがspan（位置）を付けてくれます
    let file: RulesFile = toml::from_str(text).map_err(|e| {
        ConfigError::at(path, text, e.span().unwrap_or(0..0), e.message().trim_end())
    })?;
    let mut names = HashSet::new();
    let mut rules = Vec::new();
    for spec in file.rule {
        let err = |span, message: String| ConfigError::at(path, text, span, message);
        let name = spec.name.get_ref();
        if name.is_empty() || !names.insert(name.clone()) {
            return Err(err(
                spec.name.span(),
                format!("ルールの名前\"{name}\"が空か、重複しています"),
            ));
        }
        let threshold = *spec.threshold.get_ref();
        if !threshold.is_finite() {
            return Err(err(
                spec.threshold.span(),
                "thresholdには有限の数を書きます".into(),
            ));
        }
        let clear_threshold = match &spec.clear_threshold {
            None => threshold,
            Some(c) => {
                let value = *c.get_ref();
                // 「>」の警告なら、解決の境目はthreshold以下でないと、発火と解決が同時に起きてしまいます
                let ok = match spec.op {
                    Op::Gt | Op::Ge => value <= threshold,
                    Op::Lt | Op::Le => value >= threshold,
                };
                if !ok || !value.is_finite() {
                    let side = if matches!(spec.op, Op::Gt | Op::Ge) {
                        "以下"
                    } else {
                        "以上"
                    };
                    return Err(err(
                        c.span(),
                        format!(
                            "op = \"{}\"のとき、clear_thresholdはthreshold（{threshold}）{side}にします",
                            spec.op.as_str()
                        ),
                    ));
                }
                value
            }
        };
        let filter = TargetFilter {
            include: glob_set(&spec.targets, &err)?,
            exclude: glob_set(&spec.exclude, &err)?,
            exclude_fs_types: spec.exclude_fs_types,
        };
        rules.push(Rule {
            filter,
            name: spec.name.into_inner(),
            metric: spec.metric,
            op: spec.op,
            threshold,
            clear_threshold,
            hold: spec.hold,
            clear_hold: spec.clear_for.unwrap_or(spec.hold),
            severity: spec.severity,
        });
    }
    Ok(rules)
}

fn load_rules(path: &Path) -> anyhow::Result<Vec<Rule>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("設定ファイル{}を読めません", path.display()))?;
    Ok(parse_rules(&path.display().to_string(), &text)?)
}
// ANCHOR_END: rule

// ANCHOR: engine
/// 警告の1件。JSON Linesの`"type":"alert"`の1行になり、webhookにもこの形で送ります。
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Alert {
    state: AlertState,
    rule: String,
    severity: Severity,
    metric: Metric,
    /// 系列の名前（マウントポイント、インターフェース、`cpu0`など。CPU全体なら空）
    target: String,
    /// 測ったマシンの名前（`--instance`、既定はホスト名）。複数のマシンの警告を1つの受け手で見分けます
    instance: String,
    /// この警告を決めたサンプルの値（系列が消えて解決したときはnull）
    value: Option<f64>,
    threshold: f64,
    /// 条件が成り立ち始めたサンプルの時刻（解決の行でも、発火の行と同じ値）
    since: u64,
    /// 発火・解決したサンプルの時刻
    ts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum AlertState {
    Firing,
    Resolved,
}

impl AlertState {
    fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// 1つのルールと1つの系列の組の状態
#[derive(Debug, Default)]
struct Track {
    /// 発火中なら、その警告
    firing: Option<Alert>,
    /// 今の状態を変える側の条件（発火前は「超えている」、発火中は「戻っている」）が続いている長さ
    streak: Option<Streak>,
}

#[derive(Debug)]
struct Streak {
    since: u64,
    samples: u32,
}

impl Hold {
    fn reached(&self, streak: &Streak, now: u64) -> bool {
        match *self {
            Hold::Samples(n) => streak.samples >= n,
            Hold::Time(d) => u128::from(now.saturating_sub(streak.since)) >= d.as_millis(),
        }
    }
}

impl Track {
    /// 1つのサンプルの値を受け取り、状態が変わったら警告を返します。`None`は系列が消えたことを表します。
    fn step(
        &mut self,
        rule: &Rule,
        (instance, target): (&str, &str),
        ts: u64,
        value: Option<f64>,
    ) -> Option<Alert> {
        let (pushing, hold) = match &self.firing {
            // 発火前: thresholdを超えていることが続けば発火に向かいます
            None => (
                value.is_some_and(|v| rule.op.holds(v, rule.threshold)),
                rule.hold,
            ),
            // 発火中: clear_thresholdの内側に戻っている（か系列が消えた）ことが続けば解決に向かいます
            Some(_) => (
                !value.is_some_and(|v| rule.op.holds(v, rule.clear_threshold)),
                rule.clear_hold,
            ),
        };
        if !pushing {
            // 一度でも逆に振れたら数え直し。しきい値の近くで揺れる値では、どちらにも変わりません
            self.streak = None;
            return None;
        }
        let streak = self.streak.get_or_insert(Streak {
            since: ts,
            samples: 0,
        });
        streak.samples = streak.samples.saturating_add(1);
        if !hold.reached(streak, ts) {
            return None;
        }
        let since = streak.since;
        self.streak = None;
        let alert = match self.firing.take() {
            None => {
                let alert = Alert {
                    state: AlertState::Firing,
                    rule: rule.name.clone(),
                    severity: rule.severity,
                    metric: rule.metric,
                    target: target.to_string(),
                    instance: instance.to_string(),
                    value,
                    threshold: rule.threshold,
                    since,
                    ts,
                };
                self.firing = Some(alert.clone());
                alert
            }
            Some(fired) => Alert {
                state: AlertState::Resolved,
                value,
                ts,
                ..fired
            },
        };
        Some(alert)
    }
}

/// すべてのルールとすべての系列の状態を持つ、ルールの評価器。時刻はサンプルのtsだけを使う純粋な計算です。
struct Engine {
    rules: Vec<Rule>,
    tracks: BTreeMap<(usize, String), Track>,
    instance: String,
}

impl Engine {
    fn new(rules: Vec<Rule>) -> Self {
        Self {
            rules,
            tracks: BTreeMap::new(),
            instance: String::new(),
        }
    }

    /// 警告に書くマシンの名前
    fn with_instance(self, instance: String) -> Self {
        Self { instance, ..self }
    }

    /// サンプルを1つ評価して、発火・解決した警告を返します
    fn observe(&mut self, sample: &Sample) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let series: Vec<(String, f64)> = (sample.series(rule.metric).into_iter())
                .filter(|(target, _)| rule.filter.accepts(target))
                .filter(|(target, _)| {
                    // ファイルシステムの種類で外すのは、ディスクの系列だけです
                    rule.metric != Metric::DiskPercent
                        || !sample.disks.iter().any(|d| {
                            d.mount == *target && rule.filter.exclude_fs_types.contains(&d.fs_type)
                        })
                })
                .collect();
            for (target, value) in &series {
                let track = self.tracks.entry((i, target.clone())).or_default();
                let names = (self.instance.as_str(), target.as_str());
                alerts.extend(track.step(rule, names, sample.ts, Some(*value)));
            }
            // 前回まであって今回ない系列（外したディスクなど）は「値がない」として評価します
            for ((_, target), track) in (self.tracks.iter_mut())
                .filter(|((j, t), _)| *j == i && !series.iter().any(|(s, _)| s == t))
            {
                let names = (self.instance.as_str(), target.as_str());
                alerts.extend(track.step(rule, names, sample.ts, None));
            }
        }
        // 発火しておらず、数えている途中でもない系列の状態は捨てます
        self.tracks
            .retain(|_, t| t.firing.is_some() || t.streak.is_some());
        alerts
    }

    /// 今発火している警告
    fn firing(&self) -> Vec<Alert> {
        self.tracks
            .values()
            .filter_map(|t| t.firing.clone())
            .collect()
    }
}
// ANCHOR_END: engine

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
async fn sample_loop<S: Sampler>(
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
enum InputLine {
    Sample(Sample),
    #[serde(other)]
    Other,
}

/// 記録したサンプルを、測定のタスクの代わりに流します。時刻はサンプルのtsなので、待たずに流せます。
async fn replay(
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
enum Record {
    Sample(Arc<Sample>),
    Alert(Alert),
}

/// 評価のタスク: サンプルを受け取ってルールを当て、警告を出力とwebhookに渡します。
/// 状態（`Engine`）はこのタスクだけが持つので、ロックは要りません。
///
/// 書き出しの係（標準出力）が詰まっても、評価は止めません。書き出しのチャネルが満杯なら、
/// サンプルの行は捨てて数え、警告の行は手元の`backlog`に取っておいて、空きができたら送ります。
async fn evaluate(
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
enum Line<'a> {
    Sample(&'a Sample),
    Alert(&'a Alert),
}

/// 書き出しの係: 標準出力やファイルへの書き込みはブロックするので、spawn_blockingのスレッドで
/// `blocking_recv`を使って受け取ります。チャネルが空になるたびにflushするので、行がバッファに溜まったままになりません。
fn write_records(
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

// ANCHOR: webhook
/// 評価のタスクがwebhookの係に警告を渡す口（Alertmanagerと同じ考え方です）。
///
/// 警告を1件ずつキューに積むのではなく、ルールと系列の組ごとに**最新の状態**を1つだけ持ちます。
/// `notify`は待たず、何も捨てません。同じ組の状態が届く前に変われば、新しいほうだけを送ります
/// （受け手が最後に知る状態は、いつも今の状態です）。届けた発火は`repeat`ごとに送り直し、
/// 届けた解決は表から消します。
#[derive(Clone, Default)]
struct Notifier(Arc<Outbox>);

#[derive(Default)]
struct Outbox {
    state: std::sync::Mutex<OutboxState>,
    changed: Notify,
}

#[derive(Default)]
struct OutboxState {
    alerts: BTreeMap<(String, String), Pending>,
    /// 評価が終わった。まだ届いていない状態を送り終えたら、送る係も終わります
    closed: bool,
}

struct Pending {
    alert: Alert,
    /// 最後に届けた時刻。`None`なら、この状態はまだ届いていません
    sent: Option<Instant>,
}

/// 送る係が次にすること
enum Next {
    Send(Alert),
    /// この時刻（`None`なら何かが変わる）まで待つ
    Wait(Option<Instant>),
    Done,
}

impl Notifier {
    fn notify(&self, alert: Alert) {
        let key = (alert.rule.clone(), alert.target.clone());
        let pending = Pending { alert, sent: None };
        self.0.state.lock().unwrap().alerts.insert(key, pending);
        self.0.changed.notify_one();
    }

    fn close(&self) {
        self.0.state.lock().unwrap().closed = true;
        self.0.changed.notify_one();
    }

    /// まだ届いていない状態の数
    fn undelivered(&self) -> usize {
        let state = self.0.state.lock().unwrap();
        state.alerts.values().filter(|p| p.sent.is_none()).count()
    }

    fn next(&self, now: Instant, repeat: Duration) -> Next {
        let state = self.0.state.lock().unwrap();
        if let Some(p) = state.alerts.values().find(|p| p.sent.is_none()) {
            return Next::Send(p.alert.clone());
        }
        if state.closed {
            return Next::Done;
        }
        // 届けた発火のうち、送り直す時刻がいちばん早いもの
        let due = (state.alerts.values())
            .filter_map(|p| Some((p.sent? + repeat, p)))
            .min_by_key(|(at, _)| *at);
        match due {
            Some((at, p)) if at <= now => Next::Send(p.alert.clone()),
            Some((at, _)) => Next::Wait(Some(at)),
            None => Next::Wait(None),
        }
    }

    /// `alert`を届けました。その間に状態が変わっていれば、新しい状態はまだ届いていないままです
    fn delivered(&self, alert: &Alert, at: Instant) {
        let mut state = self.0.state.lock().unwrap();
        let key = (alert.rule.clone(), alert.target.clone());
        let Some(pending) = state.alerts.get_mut(&key) else {
            return;
        };
        if pending.alert != *alert {
            return;
        }
        match alert.state {
            AlertState::Firing => pending.sent = Some(at),
            AlertState::Resolved => {
                state.alerts.remove(&key);
            }
        }
    }
}

/// やり直しの間隔（19.4節の指数バックオフと同じ考え方です）。回数の上限はありません。
/// 届くまで（または停止まで）、間隔を`max_delay`まで延ばしながら送り続けます
#[derive(Clone, Copy)]
struct RetryPolicy {
    first_delay: Duration,
    max_delay: Duration,
    jitter: fn(Duration) -> Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            jitter: |d| d.mul_f64(fastrand::f64()), // 0からdまでのどこか（full jitter）
        }
    }
}

/// ログに出してよい形のURL（スキームとホストだけ）。SlackやDiscordのwebhookは、
/// パスそのものが秘密のトークンなので、ログに残してはいけません
fn redact(url: &reqwest::Url) -> String {
    match url.port() {
        Some(port) => format!(
            "{}://{}:{port}/…",
            url.scheme(),
            url.host_str().unwrap_or("")
        ),
        None => format!("{}://{}/…", url.scheme(), url.host_str().unwrap_or("")),
    }
}

/// webhookの係: 届いていない状態を1件ずつ送り、発火中の警告を`repeat`ごとに送り直します。
/// 遅くても、ほかのタスクは待たされません。
async fn send_webhooks(
    client: reqwest::Client,
    url: reqwest::Url,
    outbox: Notifier,
    policy: RetryPolicy,
    repeat: Duration,
    stats: Stats,
) {
    let mut delay = policy.first_delay;
    loop {
        // 先に`notified`を作ってから表を見るので、その間の`notify`も取りこぼしません
        let changed = outbox.0.changed.notified();
        let alert = match outbox.next(Instant::now(), repeat) {
            Next::Done => return,
            Next::Wait(None) => {
                changed.await;
                continue;
            }
            Next::Wait(Some(at)) => {
                tokio::select! {
                    _ = changed => {}
                    _ = time::sleep_until(at) => {}
                }
                continue;
            }
            Next::Send(alert) => alert,
        };
        match deliver(&client, &url, &alert).await {
            Delivery::Accepted => {
                stats.webhook_sent.inc();
                outbox.delivered(&alert, Instant::now());
                delay = policy.first_delay;
            }
            Delivery::Rejected(status) => {
                // 400や404は、何度送っても同じです。この状態は送ったことにして、次へ進みます
                stats.webhook_failed.inc();
                error!(%status, rule = %alert.rule, webhook = %redact(&url), "webhookが警告を受け付けませんでした");
                outbox.delivered(&alert, Instant::now());
            }
            Delivery::Retry => {
                stats.webhook_retries.inc();
                time::sleep((policy.jitter)(delay)).await;
                delay = (delay * 2).min(policy.max_delay);
            }
        }
    }
}

/// 1回の送信の結果
#[derive(Debug, PartialEq)]
enum Delivery {
    Accepted,
    /// やり直しても直らない応答（429以外の4xx）
    Rejected(reqwest::StatusCode),
    /// つながらない、5xx、429: 待ってやり直します
    Retry,
}

/// 1件の警告をPOSTします
async fn deliver(client: &reqwest::Client, url: &reqwest::Url, alert: &Alert) -> Delivery {
    let body = match serde_json::to_vec(alert) {
        Ok(body) => body,
        Err(e) => {
            error!("警告をJSONにできません: {e}");
            return Delivery::Rejected(reqwest::StatusCode::BAD_REQUEST);
        }
    };
    let sent = client
        .post(url.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Delivery::Accepted,
        Ok(response) => {
            let status = response.status();
            warn!(%status, webhook = %redact(url), "webhookが失敗しました");
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                Delivery::Retry
            } else {
                Delivery::Rejected(status)
            }
        }
        Err(e) => {
            // reqwestのエラーの文にはURLが入るので、取り除いてからログに出します
            warn!(webhook = %redact(url), "webhookに送れません: {}", e.without_url());
            Delivery::Retry
        }
    }
}
// ANCHOR_END: webhook

// ANCHOR: metrics
/// プロセスの中で数え続ける値。`Counter`の中身は`Arc<AtomicU64>`なので、cloneしても同じ値を指します。
#[derive(Clone, Default)]
struct Stats {
    samples: Counter,
    /// 時間内に終わらなかった測定（止まったNFSのマウントなど）
    sample_timeouts: Counter,
    /// 書き出しが詰まっていたので、JSON Linesに書かなかったサンプルの行
    output_dropped: Counter,
    /// 最後に測り終えたサンプルの時刻（UNIX時間のミリ秒）
    last_sample_ms: Arc<AtomicU64>,
    alerts: Family<Labels, Counter>,
    webhook_sent: Counter,
    webhook_retries: Counter,
    webhook_failed: Counter,
}

type Labels = Vec<(&'static str, String)>;
/// 1つの系列の、ラベルと値
type Point = (Labels, f64);
type F64Gauge = Gauge<f64, AtomicU64>;
/// カウンタの系列の、ラベルと値
type CounterPoint = (Labels, u64);

/// /metricsのハンドラが読むもの。最新のサンプルと発火中の警告はwatchチャネルの受信側です。
#[derive(Clone)]
struct MetricsState {
    latest: watch::Receiver<Option<Arc<Sample>>>,
    firing: watch::Receiver<Vec<Alert>>,
    stats: Stats,
    /// これより古いサンプルの値は出しません（古い値を新しい値のように見せないため）。`--replay`ではNone
    stale_after: Option<Duration>,
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
async fn serve_metrics(
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

// ANCHOR: cli
#[derive(Parser, Debug)]
#[command(
    version,
    about = "システムのリソースを定期的に測り、ルールに従って警告を出します"
)]
struct Cli {
    /// 警告のルールを書いたTOMLファイル
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// 測る間隔（例: 1s、500ms、1m）
    #[arg(short, long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    interval: Duration,
    /// Prometheusの/metricsを配信するアドレス（例: 127.0.0.1:9184）
    #[arg(short, long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// JSON Linesを追記するファイル（省略すると標準出力）
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// 警告だけでなく、サンプルもJSON Linesに書く
    #[arg(long)]
    samples: bool,
    /// 警告をJSONでPOSTするURL（ログにはスキームとホストだけを出します）
    #[arg(long, value_name = "URL")]
    webhook: Option<reqwest::Url>,
    /// 発火中の警告をwebhookへ送り直す間隔（Alertmanagerのrepeat_interval）
    #[arg(long, value_name = "DURATION", default_value = "4h", value_parser = parse_duration)]
    repeat_interval: Duration,
    /// 1回の測定の時間制限。応答しないマウントがあっても、ほかの測定と警告を止めません
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    sample_timeout: Duration,
    /// 警告に書くマシンの名前（省略するとホスト名）
    #[arg(long, value_name = "NAME")]
    instance: Option<String>,
    /// 記録する、CPUとメモリを多く使うプロセスの数
    #[arg(long, value_name = "N", default_value_t = 5)]
    top: usize,
    /// N回測ったら終わる（省略するとCtrl-Cまで続ける）
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// 測る代わりに、--samplesで記録したJSON Linesを読んでルールを当てる
    #[arg(long, value_name = "FILE", conflicts_with = "count")]
    replay: Option<PathBuf>,
    /// 設定ファイルを検査して、ルールの一覧を表示して終わる
    #[arg(long)]
    check: bool,
    /// ログを詳しくする（debug）
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// 警告とエラーのログだけを出す
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d < Duration::from_millis(10) => Err("間隔は10ms以上にします".to_string()),
        d => Ok(d),
    }
}
// ANCHOR_END: cli

// ANCHOR: main
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose, cli.quiet);
    let rules = match &cli.config {
        Some(path) => match load_rules(path) {
            Ok(rules) => rules,
            Err(e) => {
                eprintln!("エラー: {e:#}");
                return ExitCode::from(2);
            }
        },
        None => Vec::new(),
    };
    if cli.check {
        print_rules(cli.config.as_deref(), &rules);
        return ExitCode::SUCCESS;
    }
    match run(cli, rules).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// タスクを起動してチャネルでつなぎ、上流から順に終わるのを待ちます
async fn run(cli: Cli, rules: Vec<Rule>) -> anyhow::Result<()> {
    if rules.is_empty() {
        warn!("ルールがないので、警告は出ません（--configでルールのファイルを指定します）");
    }
    let stop = CancellationToken::new();
    let stats = Stats::default();
    let (sample_tx, sample_rx) = mpsc::channel(16);
    let (record_tx, record_rx) = mpsc::channel(256);
    let (latest_tx, latest_rx) = watch::channel(None);
    let (firing_tx, firing_rx) = watch::channel(Vec::new());

    let out: Box<dyn Write + Send> = match &cli.output {
        Some(path) => Box::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("{}を開けません", path.display()))?,
        ),
        None => Box::new(io::stdout()),
    };
    let writer = task::spawn_blocking(move || write_records(record_rx, out));

    let (notifier, webhook) = match cli.webhook {
        Some(url) => {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?;
            info!(webhook = %redact(&url), "警告をwebhookへ送ります");
            let notifier = Notifier::default();
            let task = tokio::spawn(send_webhooks(
                client,
                url,
                notifier.clone(),
                RetryPolicy::default(),
                cli.repeat_interval,
                stats.clone(),
            ));
            (Some(notifier), Some(task))
        }
        None => (None, None),
    };
    let instance = cli
        .instance
        .or_else(|| System::host_name().ok())
        .unwrap_or_else(|| "localhost".to_string());

    let server = match cli.listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("{addr}で待ち受けられません"))?;
            info!(
                "http://{}/metrics でメトリクスを配信します",
                listener.local_addr()?
            );
            let state = MetricsState {
                latest: latest_rx,
                firing: firing_rx,
                stats: stats.clone(),
                // 測定の間隔の3倍と時間制限の長いほうより古ければ、止まっているとみなします
                stale_after: cli
                    .replay
                    .is_none()
                    .then(|| (cli.interval * 3).max(cli.sample_timeout)),
            };
            Some(tokio::spawn(serve_metrics(listener, state, stop.clone())))
        }
        None => None,
    };

    let engine = Engine::new(rules).with_instance(instance);
    let notifier_left = notifier.clone();
    let evaluator = tokio::spawn(evaluate(
        engine,
        sample_rx,
        record_tx,
        notifier,
        firing_tx,
        stats.clone(),
        cli.samples,
    ));

    let source = match cli.replay {
        Some(path) => {
            info!("{}のサンプルにルールを当てます", path.display());
            tokio::spawn(replay(path, sample_tx, latest_tx, stats.clone()))
        }
        None => {
            let sampler = SystemSampler::new(cli.top).context("システムの情報を読めません")?;
            info!(interval = ?cli.interval, "測定を始めます");
            tokio::spawn(sample_loop(
                sampler,
                cli.interval,
                cli.sample_timeout,
                cli.count,
                sample_tx,
                latest_tx,
                stats.clone(),
                stop.clone(),
            ))
        }
    };

    let signal_stop = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("停止の合図を受け取りました");
        signal_stop.cancel();
    });

    // 上流から順に待ちます。測定が止まるとチャネルが閉じ、評価、書き出し、webhookの順に終わります
    let sampled = source.await?;
    evaluator.await?;
    writer.await?.context("JSON Linesを書けません")?;
    if let (Some(webhook), Some(notifier)) = (webhook, notifier_left) {
        let abort = webhook.abort_handle();
        // まだ届いていない状態（とくに解決）を送ってから終わります。ただし、送れない相手に
        // いつまでも待たされないよう、残りを送る時間に上限を設けます
        if time::timeout(Duration::from_secs(5), webhook)
            .await
            .is_err()
        {
            abort.abort();
            warn!(
                undelivered = notifier.undelivered(),
                "5秒以内に送り終わらなかった警告をあきらめました"
            );
        }
    }
    stop.cancel();
    if let Some(server) = server {
        server.await??;
    }
    sampled?;
    info!(
        samples = stats.samples.get(),
        webhook_sent = stats.webhook_sent.get(),
        webhook_failed = stats.webhook_failed.get(),
        "停止しました"
    );
    Ok(())
}

/// Ctrl-C（SIGINT）か、サービスの停止で送られるSIGTERMを待ちます
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
            Err(e) => warn!("SIGTERMを待てません: {e}"),
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        error!("Ctrl-Cを待てません: {e}");
        std::future::pending::<()>().await;
    }
}
// ANCHOR_END: main

fn print_rules(path: Option<&Path>, rules: &[Rule]) {
    let path = path.map_or_else(
        || "（設定ファイルなし）".to_string(),
        |p| p.display().to_string(),
    );
    println!("{path}: {}個のルールを読みました", rules.len());
    for r in rules {
        println!(
            "  {} [{}]: {} {} {} が {} 続いたら発火、{} {} が {} 続いたら解決",
            r.name,
            r.severity.as_str(),
            r.metric.as_str(),
            r.op.as_str(),
            r.threshold,
            r.hold,
            r.op.negated().as_str(),
            r.clear_threshold,
            r.clear_hold,
        );
    }
}

/// ログの詳しさ: 既定はinfo、`-v`でdebug、`-q`でwarn以上だけ。`RUST_LOG`があれば、そちらが優先です
fn init_tracing(verbose: u8, quiet: bool) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    // ANCHOR: fake_sampler
    /// 決まったCPU使用率を順に返す偽のサンプラー
    struct Scripted(VecDeque<f64>);

    impl Sampler for Scripted {
        fn sample(&mut self, ts: u64) -> Sample {
            cpu_sample(ts, self.0.pop_front().unwrap_or(0.0))
        }
    }

    fn cpu_sample(ts: u64, cpu: f64) -> Sample {
        Sample {
            ts,
            cpu: Cpu {
                total_percent: cpu,
                cores_percent: vec![cpu],
            },
            ..Sample::default()
        }
    }
    // ANCHOR_END: fake_sampler

    fn rules(toml: &str) -> Vec<Rule> {
        parse_rules("test.toml", toml).unwrap_or_else(|e| panic!("{e}"))
    }

    fn cpu_rule(extra: &str) -> Vec<Rule> {
        rules(&format!(
            "[[rule]]\nname = \"cpu\"\nmetric = \"cpu_percent\"\nop = \">\"\nthreshold = 90\n{extra}"
        ))
    }

    /// 本物のタスク（測定と評価）を偽のサンプラーで動かし、警告と、それが届いた時刻（起動からの経過）を集めます
    async fn timeline(rules: Vec<Rule>, values: &[f64], every: Duration) -> Vec<(Duration, Alert)> {
        let stats = Stats::default();
        let (sample_tx, sample_rx) = mpsc::channel(16);
        let (record_tx, mut record_rx) = mpsc::channel(64);
        let (latest_tx, _latest_rx) = watch::channel(None);
        let (firing_tx, _firing_rx) = watch::channel(Vec::new());
        let start = Instant::now();
        let sampler = Scripted(values.iter().copied().collect());
        let count = Some(values.len() as u64);
        tokio::spawn(sample_loop(
            sampler,
            every,
            every * 10,
            count,
            sample_tx,
            latest_tx,
            stats.clone(),
            CancellationToken::new(),
        ));
        tokio::spawn(evaluate(
            Engine::new(rules),
            sample_rx,
            record_tx,
            None,
            firing_tx,
            stats,
            false,
        ));
        let mut alerts = Vec::new();
        while let Some(record) = record_rx.recv().await {
            if let Record::Alert(alert) = record {
                alerts.push((start.elapsed(), alert));
            }
        }
        alerts
    }

    fn states(alerts: &[(Duration, Alert)]) -> Vec<(Duration, AlertState)> {
        alerts.iter().map(|(t, a)| (*t, a.state)).collect()
    }

    const SEC: Duration = Duration::from_secs(1);

    // ANCHOR: timeline_test
    #[tokio::test(start_paused = true)]
    async fn fires_after_three_samples_and_resolves_after_two() {
        let rules = cpu_rule("for = \"3 samples\"\nclear_for = \"2 samples\"");
        // サンプルはt = 1, 2, 3, …秒。t=2から超え、t=4で3回目 → 発火。t=6から戻り、t=7で2回目 → 解決
        let values = [50.0, 95.0, 95.0, 95.0, 95.0, 50.0, 50.0, 50.0];
        let alerts = timeline(rules, &values, SEC).await;
        assert_eq!(
            states(&alerts),
            [
                (4 * SEC, AlertState::Firing),
                (7 * SEC, AlertState::Resolved)
            ]
        );
        let (_, fired) = &alerts[0];
        assert_eq!(fired.ts - fired.since, 2000, "条件はt=2から続いていた");
        assert_eq!(fired.value, Some(95.0));
        let (_, resolved) = &alerts[1];
        assert_eq!((resolved.since, resolved.value), (fired.since, Some(50.0)));
    }
    // ANCHOR_END: timeline_test

    #[tokio::test(start_paused = true)]
    async fn duration_holds_are_measured_on_the_sample_clock() {
        let rules = cpu_rule("for = \"3s\"\nclear_for = \"2s\"");
        // t=2から超えて、3秒後のt=5で発火。t=6から戻り、2秒後のt=8で解決
        let values = [50.0, 95.0, 95.0, 95.0, 95.0, 50.0, 50.0, 50.0, 50.0];
        let alerts = timeline(rules, &values, SEC).await;
        assert_eq!(
            states(&alerts),
            [
                (5 * SEC, AlertState::Firing),
                (8 * SEC, AlertState::Resolved)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_value_oscillating_around_the_threshold_never_fires() {
        let rules = cpu_rule("for = \"3 samples\"");
        let values: Vec<f64> = (0..30)
            .map(|i| if i % 2 == 0 { 89.0 } else { 91.0 })
            .collect();
        assert_eq!(timeline(rules, &values, SEC).await, []);
    }

    #[tokio::test(start_paused = true)]
    async fn hysteresis_keeps_a_firing_alert_from_flapping() {
        let rules =
            cpu_rule("for = \"3 samples\"\nclear_threshold = 70\nclear_for = \"3 samples\"");
        let mut values = vec![95.0; 3]; // t=1..3: 発火
        values.extend((0..20).map(|i| if i % 2 == 0 { 85.0 } else { 95.0 })); // 90をまたいで揺れる
        values.extend([60.0, 75.0, 60.0, 60.0, 60.0]); // 75で数え直し、t=28で解決
        let alerts = timeline(rules, &values, SEC).await;
        assert_eq!(
            states(&alerts),
            [
                (3 * SEC, AlertState::Firing),
                (28 * SEC, AlertState::Resolved)
            ]
        );
    }

    #[test]
    fn each_target_has_its_own_state_and_a_vanished_target_resolves() {
        let rules = rules(
            "[[rule]]\nname = \"disk\"\nmetric = \"disk_percent\"\nop = \">=\"\nthreshold = 90\nfor = \"2 samples\"\nclear_for = \"1 sample\"",
        );
        let disk = |mount: &str, used_percent: u64| Disk {
            mount: mount.into(),
            fs_type: "ext4".into(),
            total_bytes: 100,
            available_bytes: 100 - used_percent,
        };
        let sample = |ts, disks| Sample {
            ts,
            disks,
            ..Sample::default()
        };
        let mut engine = Engine::new(rules);
        assert_eq!(
            engine.observe(&sample(1, vec![disk("/", 95), disk("/data", 10)])),
            []
        );
        let fired = engine.observe(&sample(2, vec![disk("/", 95), disk("/data", 10)]));
        assert_eq!(fired.len(), 1);
        assert_eq!(
            (fired[0].target.as_str(), fired[0].state),
            ("/", AlertState::Firing)
        );
        assert_eq!(engine.firing().len(), 1);
        // "/"が消えた（アンマウントされた）: 値なしで解決します
        let resolved = engine.observe(&sample(3, vec![disk("/data", 10)]));
        assert_eq!(resolved.len(), 1);
        assert_eq!(
            (resolved[0].state, resolved[0].value),
            (AlertState::Resolved, None)
        );
        assert!(engine.firing().is_empty());
        assert!(engine.tracks.is_empty(), "使い終わった状態は捨てる");
    }

    #[test]
    fn less_than_rules_and_all_metrics_have_series() {
        let mut s = cpu_sample(0, 10.0);
        s.memory = Memory {
            total_bytes: 200,
            used_bytes: 50,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
        };
        s.load = Some([1.0, 2.0, 3.0]);
        s.networks = vec![Network {
            interface: "eth0".into(),
            rx_bytes_per_sec: 5.0,
            tx_bytes_per_sec: 7.0,
            rx_bytes_total: 5000,
            tx_bytes_total: 7000,
        }];
        assert_eq!(s.series(Metric::MemoryPercent), [(String::new(), 25.0)]);
        assert_eq!(
            s.series(Metric::SwapPercent),
            [],
            "スワップがなければ系列もない"
        );
        assert_eq!(s.series(Metric::Load5), [(String::new(), 2.0)]);
        assert_eq!(
            s.series(Metric::CoreCpuPercent),
            [("cpu0".to_string(), 10.0)]
        );
        assert_eq!(
            s.series(Metric::NetTxBytesPerSec),
            [("eth0".to_string(), 7.0)]
        );
        let rules = rules(
            "[[rule]]\nname = \"idle\"\nmetric = \"cpu_percent\"\nop = \"<\"\nthreshold = 20\nclear_threshold = 30",
        );
        let mut engine = Engine::new(rules);
        assert_eq!(engine.observe(&s)[0].state, AlertState::Firing);
        assert_eq!(
            engine.observe(&cpu_sample(1, 25.0)),
            [],
            "20から30の間は不感帯"
        );
        assert_eq!(
            engine.observe(&cpu_sample(2, 31.0))[0].state,
            AlertState::Resolved
        );
    }

    // ---- 設定ファイルの誤り ----

    fn config_error(toml: &str) -> String {
        match parse_rules("rules.toml", toml) {
            Ok(_) => panic!("受け付けてしまった: {toml}"),
            Err(e) => e.to_string(),
        }
    }

    const GOOD: &str =
        "[[rule]]\nname = \"cpu\"\nmetric = \"cpu_percent\"\nop = \">\"\nthreshold = 90\n";

    #[test]
    fn config_errors_name_the_file_line_and_reason() {
        let e = config_error(&GOOD.replace("cpu_percent", "cpu_pct"));
        assert!(
            e.starts_with("rules.toml:3:10: unknown variant `cpu_pct`"),
            "{e}"
        );
        assert!(
            e.ends_with("3 | metric = \"cpu_pct\"\n  |          ^^^^^^^^^"),
            "{e}"
        );

        let e = config_error(&format!("{GOOD}for = \"3 sampels\""));
        assert!(e.starts_with("rules.toml:6:7: "), "{e}");
        assert!(e.contains("\"3 sampels\"は長さとして読めません"), "{e}");
        assert!(e.contains("sampels"), "{e}");

        let e = config_error(&format!("{GOOD}for = \"0 samples\""));
        assert!(
            e.starts_with("rules.toml:6:7: ") && e.contains("1以上"),
            "{e}"
        );

        let e = config_error(&format!("{GOOD}clear_threshold = 95"));
        assert!(
            e.starts_with("rules.toml:6:19: ") && e.contains("threshold（90）以下"),
            "{e}"
        );

        let e = config_error(&GOOD.replace("\">\"", "\"=>\""));
        assert!(e.starts_with("rules.toml:4:6: unknown variant `=>`"), "{e}");

        let e = config_error(&format!("{GOOD}treshold = 80"));
        assert!(
            e.starts_with("rules.toml:6:1: unknown field `treshold`"),
            "{e}"
        );

        let e = config_error(&format!("{GOOD}{GOOD}"));
        assert!(
            e.starts_with("rules.toml:7:8: ") && e.contains("重複"),
            "{e}"
        );

        let e = config_error(&GOOD.replace("threshold = 90", "threshold = "));
        assert!(e.starts_with("rules.toml:5:"), "{e}");

        let e = config_error("[[rule]]\nname = \"x\"\n");
        assert!(
            e.starts_with("rules.toml:1:1: missing field `metric`"),
            "{e}"
        );
    }

    #[test]
    fn metric_names_match_the_config_names() {
        const ALL: [Metric; 10] = [
            Metric::CpuPercent,
            Metric::CoreCpuPercent,
            Metric::MemoryPercent,
            Metric::SwapPercent,
            Metric::DiskPercent,
            Metric::Load1,
            Metric::Load5,
            Metric::Load15,
            Metric::NetRxBytesPerSec,
            Metric::NetTxBytesPerSec,
        ];
        for m in ALL {
            let parsed: Metric = serde_json::from_value(serde_json::json!(m.as_str())).unwrap();
            assert_eq!(parsed, m);
        }
    }

    #[test]
    fn holds_and_intervals_parse() {
        let hold = |s: &str| Hold::try_from(s.to_string());
        assert_eq!(hold("3 samples"), Ok(Hold::Samples(3)));
        assert_eq!(hold("1 sample"), Ok(Hold::Samples(1)));
        assert_eq!(hold("30s"), Ok(Hold::Time(Duration::from_secs(30))));
        assert_eq!(hold("500ms"), Ok(Hold::Time(Duration::from_millis(500))));
        assert_eq!(hold("5m").map(|h| h.to_string()), Ok("5m".to_string()));
        assert!(hold("soon").is_err());
        assert!(hold("-1s").is_err());
        assert!(hold("99999999999999999h").is_err(), "桁あふれはエラー");
        assert_eq!(parse_interval("100ms"), Ok(Duration::from_millis(100)));
        assert!(parse_interval("1ms").is_err());
    }

    #[test]
    fn the_bundled_rules_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.toml");
        let rules = load_rules(&path).unwrap();
        assert!(rules.len() >= 4);
    }

    // ---- webhook ----

    /// 最初の`failures`回は503を返し、その後は200を返すwebhookの受け手。届いた本文と時刻を記録します
    async fn flaky_server(
        failures: usize,
    ) -> (reqwest::Url, Arc<Mutex<Vec<(std::time::Instant, String)>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::clone(&seen);
        let app = Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| async move {
                let mut seen = state.lock().unwrap();
                seen.push((std::time::Instant::now(), body));
                if seen.len() <= failures {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    fn test_alert() -> Alert {
        Alert {
            state: AlertState::Firing,
            rule: "cpu".into(),
            severity: Severity::Critical,
            metric: Metric::CpuPercent,
            target: String::new(),
            instance: "web-1".into(),
            value: Some(97.5),
            threshold: 90.0,
            since: 1000,
            ts: 3000,
        }
    }

    const FAST: RetryPolicy = RetryPolicy {
        first_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(1),
        jitter: |d| d, // テストでは揺らさず、待ち時間を確かめます
    };

    const HOUR: Duration = Duration::from_secs(3600);

    /// 送る係を起動し、`alerts`を渡して評価の終わり（`close`）を知らせ、係が終わるのを待ちます
    async fn send_and_close(url: reqwest::Url, alerts: Vec<Alert>, stats: &Stats) {
        let outbox = Notifier::default();
        let sender = tokio::spawn(send_webhooks(
            reqwest::Client::new(),
            url,
            outbox.clone(),
            FAST,
            HOUR,
            stats.clone(),
        ));
        for alert in alerts {
            outbox.notify(alert);
        }
        outbox.close();
        time::timeout(Duration::from_secs(10), sender)
            .await
            .expect("webhookの係が終わらない")
            .unwrap();
    }

    #[tokio::test]
    async fn webhook_retries_with_backoff_until_accepted() {
        let (url, seen) = flaky_server(2).await;
        let stats = Stats::default();
        send_and_close(url, vec![test_alert()], &stats).await;
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3, "503が2回、そのあと200");
        for (_, body) in seen.iter() {
            let json: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(json["rule"], "cpu");
            assert_eq!(json["state"], "firing");
            assert_eq!(json["value"], 97.5);
            assert_eq!(json["instance"], "web-1");
        }
        assert!(
            seen[1].0 - seen[0].0 >= Duration::from_millis(20),
            "1回目の後は20ms待つ"
        );
        assert!(
            seen[2].0 - seen[1].0 >= Duration::from_millis(40),
            "2回目の後は2倍の40ms待つ"
        );
        assert_eq!(
            (
                stats.webhook_sent.get(),
                stats.webhook_retries.get(),
                stats.webhook_failed.get()
            ),
            (1, 2, 0)
        );
    }

    /// 回数の上限でやめず、届くまで送ります。届く前に解決したら、送るのは最新の「解決」です
    #[tokio::test]
    async fn webhook_never_gives_up_and_a_resolved_is_never_lost() {
        let (url, seen) = flaky_server(7).await;
        let stats = Stats::default();
        let resolved = Alert {
            state: AlertState::Resolved,
            ts: 9000,
            ..test_alert()
        };
        send_and_close(url, vec![test_alert(), resolved], &stats).await;
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 8, "503が7回、そのあと200");
        let last: serde_json::Value = serde_json::from_str(&seen[7].1).unwrap();
        assert_eq!(last["state"], "resolved");
        assert_eq!(
            (stats.webhook_sent.get(), stats.webhook_retries.get()),
            (1, 7)
        );
    }

    /// 発火中の警告は`repeat`ごとに送り直し、解決を届けたら送り直しをやめます
    #[tokio::test]
    async fn firing_alerts_are_resent_until_resolved() {
        let (url, seen) = flaky_server(0).await;
        let stats = Stats::default();
        let outbox = Notifier::default();
        let repeat = Duration::from_millis(50);
        let sender = tokio::spawn(send_webhooks(
            reqwest::Client::new(),
            url,
            outbox.clone(),
            FAST,
            repeat,
            stats.clone(),
        ));
        outbox.notify(test_alert());
        let wait_for = |n: usize| {
            let seen = Arc::clone(&seen);
            async move {
                while seen.lock().unwrap().len() < n {
                    time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        time::timeout(Duration::from_secs(5), wait_for(3))
            .await
            .expect("発火が送り直されない");
        outbox.notify(Alert {
            state: AlertState::Resolved,
            ..test_alert()
        });
        outbox.close();
        time::timeout(Duration::from_secs(5), sender)
            .await
            .expect("webhookの係が終わらない")
            .unwrap();
        let seen = seen.lock().unwrap();
        let states: Vec<String> = (seen.iter())
            .map(|(_, body)| {
                serde_json::from_str::<serde_json::Value>(body).unwrap()["state"].to_string()
            })
            .collect();
        let (last, firing) = states.split_last().unwrap();
        assert_eq!(last, "\"resolved\"");
        assert!(
            firing.len() >= 3 && firing.iter().all(|s| s == "\"firing\""),
            "{states:?}"
        );
        for pair in seen.windows(2).take(firing.len() - 1) {
            assert!(
                pair[1].0 - pair[0].0 >= repeat,
                "送り直しの間隔が短すぎます"
            );
        }
        assert_eq!(outbox.undelivered(), 0);
    }

    #[test]
    fn webhook_urls_are_logged_without_their_secret_path() {
        let url =
            reqwest::Url::parse("https://hooks.slack.com/services/T000/B000/XXXXSECRET").unwrap();
        assert_eq!(redact(&url), "https://hooks.slack.com/…");
        let url = reqwest::Url::parse("http://127.0.0.1:8080/hook?token=abc").unwrap();
        assert_eq!(redact(&url), "http://127.0.0.1:8080/…");
    }

    #[tokio::test]
    async fn a_hanging_webhook_never_delays_sampling() {
        // 接続は受け付けるが、決して応答しない受け手
        let app = Router::new().route("/hook", axum::routing::post(std::future::pending::<()>));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url: reqwest::Url = format!("http://{}/hook", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let stats = Stats::default();
        let notifier = Notifier::default();
        tokio::spawn(send_webhooks(
            reqwest::Client::new(),
            url,
            notifier.clone(),
            FAST,
            HOUR,
            stats.clone(),
        ));

        // 毎回、発火か解決のどちらかが起きるルールと値
        let rules = cpu_rule("for = \"1 sample\"");
        let values: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 95.0 } else { 50.0 })
            .collect();
        let (sample_tx, sample_rx) = mpsc::channel(16);
        let (record_tx, mut record_rx) = mpsc::channel(64);
        let (latest_tx, _latest_rx) = watch::channel(None);
        let (firing_tx, _firing_rx) = watch::channel(Vec::new());
        let every = Duration::from_millis(10);
        tokio::spawn(sample_loop(
            Scripted(values.into()),
            every,
            SEC,
            Some(40),
            sample_tx,
            latest_tx,
            stats.clone(),
            CancellationToken::new(),
        ));
        tokio::spawn(evaluate(
            Engine::new(rules),
            sample_rx,
            record_tx,
            Some(notifier.clone()),
            firing_tx,
            stats.clone(),
            false,
        ));
        let mut alerts = 0;
        let collect = async {
            while let Some(record) = record_rx.recv().await {
                alerts += matches!(record, Record::Alert(_)) as usize;
            }
        };
        time::timeout(Duration::from_secs(10), collect)
            .await
            .expect("測定が止まった");
        // 40回の測定は、webhookを待たずに進みました
        assert_eq!(alerts, 40);
        assert_eq!(stats.samples.get(), 40);
        // 送る係は1件目で止まったまま。それでも表に残るのは、この組の最新の状態1つだけです
        assert_eq!(notifier.undelivered(), 1);
    }

    /// 書き出し（標準出力）が詰まっても、評価は止まらず、測定も進みます
    #[tokio::test]
    async fn a_blocked_output_never_stops_evaluation() {
        let stats = Stats::default();
        let rules = cpu_rule("for = \"1 sample\"");
        let values: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 95.0 } else { 50.0 })
            .collect();
        let (sample_tx, sample_rx) = mpsc::channel(4);
        // 書き出しの係の代わり: 容量1で、だれも読みません
        let (record_tx, _blocked) = mpsc::channel(1);
        let (latest_tx, _latest_rx) = watch::channel(None);
        let (firing_tx, firing_rx) = watch::channel(Vec::new());
        let sampler = tokio::spawn(sample_loop(
            Scripted(values.into()),
            Duration::from_millis(5),
            SEC,
            Some(40),
            sample_tx,
            latest_tx,
            stats.clone(),
            CancellationToken::new(),
        ));
        let notifier = Notifier::default();
        tokio::spawn(evaluate(
            Engine::new(rules),
            sample_rx,
            record_tx,
            Some(notifier.clone()),
            firing_tx,
            stats.clone(),
            true,
        ));
        time::timeout(Duration::from_secs(10), sampler)
            .await
            .expect("書き出しが詰まって、測定まで止まった")
            .unwrap()
            .unwrap();
        assert_eq!(stats.samples.get(), 40);
        assert!(
            stats.output_dropped.get() >= 39 - 1,
            "{}",
            stats.output_dropped.get()
        );
        // 最後のサンプル（50%）で解決した状態まで、評価が進んでいます
        let deadline = Instant::now() + Duration::from_secs(5);
        while !firing_rx.borrow().is_empty() || notifier.undelivered() != 1 {
            assert!(Instant::now() < deadline, "評価が最後まで進まない");
            time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// 測定が返ってこなくても（応答しないマウント）、測定のタスクは止まらず、戻ったら続けます
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hung_sample_times_out_and_sampling_resumes() {
        struct Gate {
            taken: u64,
            release: std::sync::mpsc::Receiver<()>,
        }
        impl Sampler for Gate {
            fn sample(&mut self, ts: u64) -> Sample {
                self.taken += 1;
                if self.taken == 2 {
                    let _ = self.release.recv(); // 2回目の測定は、放されるまで戻りません
                }
                cpu_sample(ts, 10.0)
            }
        }
        let (release, gate) = std::sync::mpsc::channel();
        let stats = Stats::default();
        let (sample_tx, mut sample_rx) = mpsc::channel(16);
        let (latest_tx, _latest_rx) = watch::channel(None);
        let sampler = Gate {
            taken: 0,
            release: gate,
        };
        let task = tokio::spawn(sample_loop(
            sampler,
            Duration::from_millis(20),
            Duration::from_millis(50),
            Some(4),
            sample_tx,
            latest_tx,
            stats.clone(),
            CancellationToken::new(),
        ));
        let first = time::timeout(Duration::from_secs(5), sample_rx.recv())
            .await
            .expect("1回目の測定が来ない")
            .unwrap();
        // 2回目は時間切れになり、測定のタスクは止まらずに次の周期を数えます
        let deadline = Instant::now() + Duration::from_secs(5);
        while stats.sample_timeouts.get() == 0 {
            assert!(Instant::now() < deadline, "時間切れにならない");
            time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(stats.samples.get(), 1);
        assert_eq!(stats.last_sample_ms.load(Ordering::Relaxed), first.ts);
        release.send(()).unwrap();
        // 戻ってきたサンプラーで、残りの3回を測ります
        let mut rest = Vec::new();
        while let Some(sample) = time::timeout(Duration::from_secs(5), sample_rx.recv())
            .await
            .expect("測定が再開しない")
        {
            rest.push(sample);
        }
        task.await.unwrap().unwrap();
        assert_eq!(rest.len(), 3);
        assert_eq!(stats.sample_timeouts.get(), 1);
        assert!(rest.windows(2).all(|w| w[0].ts < w[1].ts));
    }

    // ---- /metrics ----

    /// Prometheusのテキスト形式を読み、`名前{ラベル}` → 値の表にします
    fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
        let mut values = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("読めない行: {line}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("数でない値: {line}"));
            assert!(
                values.insert(series.to_string(), value).is_none(),
                "同じ系列が2回: {line}"
            );
        }
        values
    }

    #[tokio::test]
    async fn metrics_are_scraped_over_http_in_prometheus_text_format() {
        let mut sample = cpu_sample(0, 42.5);
        sample.cpu.cores_percent = vec![40.0, 45.0];
        sample.memory = Memory {
            total_bytes: 1000,
            used_bytes: 250,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
        };
        sample.load = Some([0.5, 0.25, 0.125]);
        sample.disks = vec![Disk {
            mount: "/".into(),
            fs_type: "ext4".into(),
            total_bytes: 100,
            available_bytes: 40,
        }];
        sample.networks = vec![Network {
            interface: "eth0".into(),
            rx_bytes_per_sec: 1500.0,
            tx_bytes_per_sec: 0.0,
            rx_bytes_total: 123_456,
            tx_bytes_total: 789,
        }];
        let stats = Stats::default();
        stats.samples.inc_by(7);
        stats.sample_timeouts.inc_by(3);
        stats
            .last_sample_ms
            .store(1_700_000_000_500, Ordering::Relaxed);
        let (_latest_tx, latest) = watch::channel(Some(Arc::new(sample)));
        let (_firing_tx, firing) = watch::channel(vec![test_alert()]);
        let stop = CancellationToken::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let server = tokio::spawn(serve_metrics(
            listener,
            MetricsState {
                latest,
                firing,
                stats,
                stale_after: None,
            },
            stop.clone(),
        ));

        let response = time::timeout(Duration::from_secs(10), reqwest::get(&url))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        assert!(
            text.contains("# TYPE monitor_cpu_usage_percent gauge\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE monitor_samples_total counter\n"),
            "{text}"
        );
        let m = parse_exposition(&text);
        assert_eq!(m["monitor_cpu_usage_percent"], 42.5);
        assert_eq!(m["monitor_cpu_core_usage_percent{core=\"1\"}"], 45.0);
        assert_eq!(m["monitor_memory_used_bytes"], 250.0);
        assert_eq!(m["monitor_load_average{period=\"15m\"}"], 0.125);
        assert_eq!(m["monitor_disk_available_bytes{mount=\"/\"}"], 40.0);
        // 受信・送信はOSのカウンタそのもの（毎秒の量はPrometheusのrate()で計算します）
        assert!(
            text.contains("# TYPE monitor_network_receive_bytes_total counter\n"),
            "{text}"
        );
        assert_eq!(
            m["monitor_network_receive_bytes_total{interface=\"eth0\"}"],
            123_456.0
        );
        assert_eq!(
            m["monitor_network_transmit_bytes_total{interface=\"eth0\"}"],
            789.0
        );
        assert!(!text.contains("per_second"), "{text}");
        assert_eq!(m["monitor_last_sample_timestamp_seconds"], 1_700_000_000.5);
        assert_eq!(
            m["monitor_alerts_firing{rule=\"cpu\",target=\"\",severity=\"critical\"}"],
            1.0
        );
        assert_eq!(m["monitor_samples_total"], 7.0);
        assert_eq!(m["monitor_sample_timeouts_total"], 3.0);

        stop.cancel();
        time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    // ---- 本物のsysinfo ----

    #[test]
    fn the_real_sampler_gives_sane_values() {
        let mut sampler = SystemSampler::new(3).unwrap();
        let mut samples = Vec::new();
        for ts in [1, 2] {
            // CPU使用率の差を取るには、sysinfoの決める最小の間隔をあける必要があります
            std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
            samples.push(sampler.sample(ts));
        }
        for s in &samples {
            assert!((0.0..=100.0).contains(&s.cpu.total_percent), "{:?}", s.cpu);
            assert!(!s.cpu.cores_percent.is_empty());
            assert!(
                s.cpu
                    .cores_percent
                    .iter()
                    .all(|c| (0.0..=100.0).contains(c)),
                "{:?}",
                s.cpu
            );
            assert!(s.memory.total_bytes > 0);
            assert!(
                s.memory.used_bytes <= s.memory.total_bytes,
                "{:?}",
                s.memory
            );
            assert!(
                s.memory.swap_used_bytes <= s.memory.swap_total_bytes,
                "{:?}",
                s.memory
            );
            assert!(
                s.disks.iter().all(|d| d.available_bytes <= d.total_bytes),
                "{:?}",
                s.disks
            );
            assert!(
                s.networks
                    .iter()
                    .all(|n| n.rx_bytes_per_sec >= 0.0 && n.tx_bytes_per_sec >= 0.0)
            );
            assert!(!s.top_cpu.is_empty() && s.top_cpu.len() <= 3);
            assert!(
                s.top_cpu
                    .windows(2)
                    .all(|w| w[0].cpu_percent >= w[1].cpu_percent)
            );
            assert!(
                s.top_memory
                    .windows(2)
                    .all(|w| w[0].memory_bytes >= w[1].memory_bytes)
            );
            if cfg!(target_os = "linux") {
                assert!(s.load.is_some());
            }
        }
        // このテスト自身のプロセスも、どこかにいるはずです（一覧は上位3つだけなので、ここでは数だけ）
        assert!(samples[1].top_memory.iter().all(|p| p.pid > 0));
    }

    #[test]
    fn samples_round_trip_through_json_lines() {
        let mut s = cpu_sample(5, 12.5);
        s.top_cpu = vec![Process {
            pid: 1,
            name: "init".into(),
            cpu_percent: 0.5,
            memory_bytes: 10,
        }];
        let line = serde_json::to_string(&Line::Sample(&s)).unwrap();
        assert!(line.starts_with("{\"type\":\"sample\",\"ts\":5,"), "{line}");
        let InputLine::Sample(back) = serde_json::from_str(&line).unwrap() else {
            panic!()
        };
        assert_eq!(back, s);
        let alert = serde_json::to_string(&Line::Alert(&test_alert())).unwrap();
        assert!(matches!(
            serde_json::from_str(&alert).unwrap(),
            InputLine::Other
        ));
    }
}

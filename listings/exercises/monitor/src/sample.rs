//! サンプル（1回の測定の結果）と、それを作るサンプラー

use serde::{Deserialize, Serialize};
use sysinfo::{DiskRefreshKind, Disks, Networks, ProcessRefreshKind, ProcessesToUpdate, System};

// ANCHOR: sample
/// 1回の測定の結果。JSON Linesの`"type":"sample"`の1行になり、`--replay`で読み戻せます。
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Sample {
    /// 測った時刻（UNIX時間のミリ秒）。ルールの「30秒続いたら」はこの差で測ります
    pub(crate) ts: u64,
    pub(crate) cpu: Cpu,
    pub(crate) memory: Memory,
    /// 1分・5分・15分のロードアベレージ（測れないOSではなし）
    pub(crate) load: Option<[f64; 3]>,
    pub(crate) disks: Vec<Disk>,
    pub(crate) networks: Vec<Network>,
    /// CPU使用率の高いプロセス（上位N個）
    pub(crate) top_cpu: Vec<Process>,
    /// メモリ使用量の多いプロセス（上位N個）
    pub(crate) top_memory: Vec<Process>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cpu {
    /// すべてのコアの平均の使用率（%）
    pub(crate) total_percent: f64,
    /// コアごとの使用率（%）
    pub(crate) cores_percent: Vec<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Memory {
    pub(crate) total_bytes: u64,
    pub(crate) used_bytes: u64,
    pub(crate) swap_total_bytes: u64,
    pub(crate) swap_used_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Disk {
    pub(crate) mount: String,
    /// ファイルシステムの種類（`ext4`、`overlay`、`nfs`など）
    #[serde(default)]
    pub(crate) fs_type: String,
    pub(crate) total_bytes: u64,
    pub(crate) available_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Network {
    pub(crate) interface: String,
    pub(crate) rx_bytes_per_sec: f64,
    pub(crate) tx_bytes_per_sec: f64,
    /// 起動してからの受信・送信の合計（OSのカウンタそのもの）。/metricsにはこちらを出します
    #[serde(default)]
    pub(crate) rx_bytes_total: u64,
    #[serde(default)]
    pub(crate) tx_bytes_total: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Process {
    pub(crate) pid: u32,
    pub(crate) name: String,
    /// 1コアを100%とした使用率（複数のコアを使えば100%を超えます）
    pub(crate) cpu_percent: f64,
    pub(crate) memory_bytes: u64,
}
// ANCHOR_END: sample

// ANCHOR: metric
/// ルールが見る値。1つのメトリックが複数の系列（コアごと、マウントごと…）を持つことがあります。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Metric {
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
    pub(crate) fn as_str(self) -> &'static str {
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
    pub(crate) fn series(&self, metric: Metric) -> Vec<(String, f64)> {
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
pub(crate) trait Sampler: Send + 'static {
    fn sample(&mut self, ts: u64) -> Sample;
}

/// sysinfoでOSから値を読むサンプラー
pub(crate) struct SystemSampler {
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
    pub(crate) fn new(top: usize) -> Result<Self, sysinfo::Error> {
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

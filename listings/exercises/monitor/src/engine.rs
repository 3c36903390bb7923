//! ルールの評価器: サンプルの並びから、警告の発火と解決を決めます

use std::collections::BTreeMap;

use serde::Serialize;

use crate::rules::{Hold, Rule, Severity};
use crate::sample::{Metric, Sample};

// ANCHOR: engine
/// 警告の1件。JSON Linesの`"type":"alert"`の1行になり、webhookにもこの形で送ります。
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Alert {
    pub(crate) state: AlertState,
    pub(crate) rule: String,
    pub(crate) severity: Severity,
    pub(crate) metric: Metric,
    /// 系列の名前（マウントポイント、インターフェース、`cpu0`など。CPU全体なら空）
    pub(crate) target: String,
    /// 測ったマシンの名前（`--instance`、既定はホスト名）。複数のマシンの警告を1つの受け手で見分けます
    pub(crate) instance: String,
    /// この警告を決めたサンプルの値（系列が消えて解決したときはnull）
    pub(crate) value: Option<f64>,
    pub(crate) threshold: f64,
    /// 条件が成り立ち始めたサンプルの時刻（解決の行でも、発火の行と同じ値）
    pub(crate) since: u64,
    /// 発火・解決したサンプルの時刻
    pub(crate) ts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AlertState {
    Firing,
    Resolved,
}

impl AlertState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// 1つのルールと1つの系列の組の状態
#[derive(Debug, Default)]
pub(crate) struct Track {
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
pub(crate) struct Engine {
    rules: Vec<Rule>,
    pub(crate) tracks: BTreeMap<(usize, String), Track>,
    instance: String,
}

impl Engine {
    pub(crate) fn new(rules: Vec<Rule>) -> Self {
        Self {
            rules,
            tracks: BTreeMap::new(),
            instance: String::new(),
        }
    }

    /// 警告に書くマシンの名前
    pub(crate) fn with_instance(self, instance: String) -> Self {
        Self { instance, ..self }
    }

    /// サンプルを1つ評価して、発火・解決した警告を返します
    pub(crate) fn observe(&mut self, sample: &Sample) -> Vec<Alert> {
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
    pub(crate) fn firing(&self) -> Vec<Alert> {
        self.tracks
            .values()
            .filter_map(|t| t.firing.clone())
            .collect()
    }
}
// ANCHOR_END: engine

//! ルールの設定ファイルを読み、検査して、実行に使う`Rule`にします

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::sample::Metric;

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
pub(crate) enum Op {
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
    pub(crate) fn holds(self, value: f64, threshold: f64) -> bool {
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
pub(crate) enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

impl Severity {
    pub(crate) fn as_str(self) -> &'static str {
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
pub(crate) enum Hold {
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
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
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
pub struct Rule {
    pub(crate) name: String,
    pub(crate) metric: Metric,
    pub(crate) op: Op,
    pub(crate) threshold: f64,
    pub(crate) clear_threshold: f64,
    pub(crate) hold: Hold,
    pub(crate) clear_hold: Hold,
    pub(crate) severity: Severity,
    /// どの系列に当てるか（`targets`と`exclude`のglob、`exclude_fs_types`）
    pub(crate) filter: TargetFilter,
}

/// ルールを当てる系列の選び方
#[derive(Debug, Clone, Default)]
pub(crate) struct TargetFilter {
    include: Option<globset::GlobSet>,
    exclude: Option<globset::GlobSet>,
    pub(crate) exclude_fs_types: Vec<String>,
}

impl TargetFilter {
    pub(crate) fn accepts(&self, target: &str) -> bool {
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
pub(crate) struct ConfigError {
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
pub(crate) fn parse_rules(path: &str, text: &str) -> Result<Vec<Rule>, ConfigError> {
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

pub fn load_rules(path: &Path) -> anyhow::Result<Vec<Rule>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("設定ファイル{}を読めません", path.display()))?;
    Ok(parse_rules(&path.display().to_string(), &text)?)
}
// ANCHOR_END: rule

pub fn print_rules(path: Option<&Path>, rules: &[Rule]) {
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

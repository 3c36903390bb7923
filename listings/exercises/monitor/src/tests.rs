//! 単体テスト。時間の絡むテストはtokioの一時停止した時計で、webhookと/metricsはローカルのサーバーで確かめます

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::{self, Instant};
use tokio_util::sync::CancellationToken;

use crate::cli::parse_interval;
use crate::engine::{Alert, AlertState, Engine};
use crate::metrics::{MetricsState, Stats, serve_metrics};
use crate::rules::{Hold, Rule, Severity, load_rules, parse_rules};
use crate::sample::{Cpu, Disk, Memory, Metric, Network, Process, Sample, Sampler, SystemSampler};
use crate::tasks::{InputLine, Line, Record, evaluate, sample_loop};
use crate::webhook::{Notifier, RetryPolicy, redact, send_webhooks};

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
    let rules = cpu_rule("for = \"3 samples\"\nclear_threshold = 70\nclear_for = \"3 samples\"");
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

/// 何度もやり直すテストのため、待ち時間を1msから2倍ずつ、上限8msまで延ばします
const QUICK: RetryPolicy = RetryPolicy {
    first_delay: Duration::from_millis(1),
    max_delay: Duration::from_millis(8),
    jitter: |d| d,
};

const HOUR: Duration = Duration::from_secs(3600);

/// 送る係を起動し、`alerts`を渡して評価の終わり（`close`）を知らせ、係が終わるのを待ちます
async fn send_and_close(url: reqwest::Url, policy: RetryPolicy, alerts: Vec<Alert>, stats: &Stats) {
    let outbox = Notifier::default();
    let sender = tokio::spawn(send_webhooks(
        reqwest::Client::new(),
        url,
        outbox.clone(),
        policy,
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
    send_and_close(url, FAST, vec![test_alert()], &stats).await;
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
    // 待ち時間はFASTなら合わせて2.26秒（上限1秒に届く）。回数を数えるだけなので短くします
    send_and_close(url, QUICK, vec![test_alert(), resolved], &stats).await;
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
    let url = reqwest::Url::parse("https://hooks.slack.com/services/T000/B000/XXXXSECRET").unwrap();
    assert_eq!(redact(&url), "https://hooks.slack.com/…");
    let url = reqwest::Url::parse("http://127.0.0.1:8080/hook?token=abc").unwrap();
    assert_eq!(redact(&url), "http://127.0.0.1:8080/…");
}

/// 時計は一時停止してあります。測定の周期は一瞬で過ぎますが、評価がwebhookを待つようになれば、
/// 測定も進まなくなり、時計が10秒の時間制限まで進んで失敗します
#[tokio::test(start_paused = true)]
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
#[tokio::test(start_paused = true)]
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

/// 測定が返ってこないまま止めても、プロセスは終われます（ランタイムが、止まった測定のスレッドを待ちません）
#[test]
fn a_hung_sample_never_keeps_the_process_from_exiting() {
    struct Stuck(std::sync::mpsc::Receiver<()>);
    impl Sampler for Stuck {
        fn sample(&mut self, ts: u64) -> Sample {
            let _ = self.0.recv(); // テストの最後に放されるまで戻りません
            cpu_sample(ts, 0.0)
        }
    }
    let (release, stuck) = std::sync::mpsc::channel();
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // mainと同じ道筋: ランタイムを作って動かし、終わったら閉じます
        let result = crate::block_on(async move {
            let (sample_tx, _sample_rx) = mpsc::channel(1);
            let (latest_tx, _latest_rx) = watch::channel(None);
            let stop = CancellationToken::new();
            let task = tokio::spawn(sample_loop(
                Stuck(stuck),
                Duration::from_millis(10),
                Duration::from_millis(20),
                None,
                sample_tx,
                latest_tx,
                Stats::default(),
                stop.clone(),
            ));
            time::sleep(Duration::from_millis(100)).await;
            stop.cancel(); // Ctrl-C
            task.await?
        });
        let _ = done_tx.send(result.is_ok());
    });
    let finished = done.recv_timeout(Duration::from_secs(10));
    drop(release); // 止まっていた測定を放して、スレッドを片付けます
    assert_eq!(finished, Ok(true), "止まった測定を待ち続けて、終われない");
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

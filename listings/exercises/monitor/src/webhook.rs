//! 警告をwebhookへ届ける係: 最新の状態を届くまでやり直し、発火中は送り直します

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use tokio::sync::Notify;
use tokio::time::{self, Instant};
use tracing::{error, warn};

use crate::engine::{Alert, AlertState};
use crate::metrics::Stats;

// ANCHOR: webhook
/// 評価のタスクがwebhookの係に警告を渡す口（Alertmanagerと同じ考え方です）。
///
/// 警告を1件ずつキューに積むのではなく、ルールと系列の組ごとに**最新の状態**を1つだけ持ちます。
/// `notify`は待たず、何も捨てません。同じ組の状態が届く前に変われば、新しいほうだけを送ります
/// （受け手が最後に知る状態は、いつも今の状態です）。届けた発火は`repeat`ごとに送り直し、
/// 届けた解決は表から消します。
#[derive(Clone, Default)]
pub(crate) struct Notifier(Arc<Outbox>);

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
    pub(crate) fn notify(&self, alert: Alert) {
        let key = (alert.rule.clone(), alert.target.clone());
        let pending = Pending { alert, sent: None };
        self.0.state.lock().unwrap().alerts.insert(key, pending);
        self.0.changed.notify_one();
    }

    pub(crate) fn close(&self) {
        self.0.state.lock().unwrap().closed = true;
        self.0.changed.notify_one();
    }

    /// まだ届いていない状態の数
    pub(crate) fn undelivered(&self) -> usize {
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
pub(crate) struct RetryPolicy {
    pub(crate) first_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) jitter: fn(Duration) -> Duration,
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
pub(crate) fn redact(url: &reqwest::Url) -> String {
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
pub(crate) async fn send_webhooks(
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

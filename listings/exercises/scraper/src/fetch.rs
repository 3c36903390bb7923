//! HTTPクライアント、1回の取得、やり直し（バックオフと`Retry-After`）

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Client, StatusCode, redirect};
use tokio::time::{Instant, sleep};
use url::Url;

use crate::Crawler;
use crate::cli::Limits;
use crate::host::{Host, Hosts};
use crate::page::describe;

// ANCHOR: client
/// リダイレクトをたどる回数の上限
pub(crate) const MAX_REDIRECTS: usize = 10;

pub(crate) fn build_client(limits: &Limits, hosts: Arc<Hosts>) -> reqwest::Result<Client> {
    // その場でたどるのは、同じホストの中のリダイレクトだけです。
    // 別のホストへのリダイレクトは3xxのまま返し、行き先はそのホストの規則で改めて取得します。
    let policy = redirect::Policy::custom(move |attempt| {
        let previous = attempt.previous();
        let same_origin = previous
            .first()
            .is_none_or(|first| first.origin() == attempt.url().origin());
        if previous.len() > MAX_REDIRECTS {
            attempt.error(format!("リダイレクトが{MAX_REDIRECTS}回を超えました"))
        } else if previous.contains(attempt.url()) {
            attempt.error("リダイレクトがループしています")
        } else if previous
            .first()
            .is_some_and(|first| first.path() == "/robots.txt")
        {
            // robots.txtの取得なら、別のホストへのリダイレクトもたどります（RFC 9309）。
            // ページの取得で`/robots.txt`へ飛ばされても、それはページのリダイレクトです。
            attempt.follow()
        } else if !same_origin || hosts.forbids(attempt.url()) {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"),
    );
    Client::builder()
        .user_agent(&limits.user_agent)
        .default_headers(headers)
        .timeout(limits.timeout)
        .connect_timeout(limits.timeout)
        .redirect(policy)
        .gzip(true)
        .build()
}
// ANCHOR_END: client
// ANCHOR: retry
/// バックオフで待つ時間の上限
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// これより長いRetry-Afterを指定されたら、そのURLはあきらめます
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// 最後の試行の結果と、試行の回数
pub(crate) struct Tried {
    pub(crate) result: Result<Response, FetchError>,
    pub(crate) count: u32,
}

/// 取得できなかった理由
pub(crate) enum FetchError {
    Http(reqwest::Error),
    /// このホストはあきらめた（理由）。リクエストは送っていません
    HostAbandoned(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Http(e) => f.write_str(&describe(e)),
            FetchError::HostAbandoned(why) => f.write_str(why),
        }
    }
}

/// `url`を、ホストと全体の制限を守って取得します。一時的な失敗なら、間隔を延ばしながらやり直します
pub(crate) async fn fetch_with_retry(
    crawler: &Crawler,
    host: &Host,
    url: &Url,
    want: Want,
) -> Tried {
    let limits = &crawler.limits;
    let mut count = 0;
    loop {
        count += 1;
        let result = {
            // ホストの許可 → 間隔 → 全体の許可、の順に取ります。どのタスクも同じ順に取るので、
            // 許可の取り合いでデッドロックすることはありません。全体の許可を最後にするのは、
            // 混んでいるホストの順番を待つタスクが、全体の枠をふさがないようにするためです。
            let _host_permit = host.permits.acquire().await.expect("閉じないセマフォ");
            host.wait_turn(crawler.delay(host)).await;
            let _permit = crawler.total.acquire().await.expect("閉じないセマフォ");
            // 順番を待つあいだに、ほかのタスクがこのホストをあきらめたかもしれません。
            if let Some(why) = host.abandoned.get() {
                let result = Err(FetchError::HostAbandoned(why.clone()));
                return Tried {
                    result,
                    count: count - 1,
                };
            }
            fetch_once(crawler, url, want)
                .await
                .map_err(FetchError::Http)
        }; // ここで2つの許可を返します。やり直しを待つ間は、ほかのURLに枠を譲ります
        let Verdict::Transient { retry_after } = verdict(&result) else {
            return Tried { result, count };
        };
        if let Some(after) = retry_after.filter(|&after| after > MAX_RETRY_AFTER) {
            // 「しばらく来るな」はこのURLではなく、このホスト全体への指示です。
            // このホストへのほかのリクエストも、送らずに失敗として記録します。
            let why = format!(
                "サーバーが{}秒待つよう求めた（Retry-After）ので、このホストをあきらめました",
                after.as_secs()
            );
            tracing::warn!(host = %url.origin().ascii_serialization(), "{why}");
            let _ = host.abandoned.set(why);
            return Tried { result, count };
        }
        if count > limits.retries {
            return Tried { result, count };
        }
        let mut wait = backoff(limits.backoff, count);
        tracing::info!(%url, attempt = count, "一時的な失敗なのでやり直します");
        if let Some(after) = retry_after {
            // 「いつまで待て」と言われたら、このホストへのほかのリクエストもそれまで止めます。
            host.pause_until(Instant::now() + after);
            wait = wait.max(after);
        }
        sleep(wait).await;
    }
}

/// 1回の試行の結果を、やり直すかどうかで分けたもの
pub(crate) enum Verdict {
    /// 成功、またはやり直しても変わらない失敗（404、リダイレクトのループなど）
    Final,
    /// 一時的な失敗。サーバーが待ち時間（Retry-After）を指定していれば、その時間
    Transient { retry_after: Option<Duration> },
}

pub(crate) fn verdict(result: &Result<Response, FetchError>) -> Verdict {
    let transient = match result {
        Ok(response) => matches!(response.status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504),
        // 接続できない、時間切れ、送信中に接続が切れた
        Err(FetchError::Http(e)) => e.is_connect() || e.is_timeout() || e.is_request(),
        Err(FetchError::HostAbandoned(_)) => false,
    };
    if !transient {
        return Verdict::Final;
    }
    let retry_after = result
        .as_ref()
        .ok()
        .and_then(|response| response.retry_after);
    Verdict::Transient { retry_after }
}

/// `failures`回目の失敗の後に待つ時間: `base`、その2倍、4倍…に、最大50%のジッターを足します。
/// 足すだけなので、上限に達するまでは、待つ時間は必ず前回より長くなります
pub(crate) fn backoff(base: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1);
    let exponential = base
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_BACKOFF);
    exponential.mul_f64(1.0 + fastrand::f64() / 2.0)
}

/// Retry-Afterヘッダーの値: 秒数（`120`）か、HTTPの日付（`Wed, 21 Oct 2026 07:28:00 GMT`）
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    // 過ぎた日付なら、待たずにやり直してよいということです。
    Some(when.duration_since(SystemTime::now()).unwrap_or_default())
}
// ANCHOR_END: retry
// ANCHOR: fetch
/// 本文をどこまで読むか
#[derive(Clone, Copy)]
pub(crate) enum Want {
    /// HTMLなら`--max-bytes`まで読み、HTML以外は読まない
    Html,
    /// 種類にかかわらず、このバイト数まで読む（robots.txt）
    Always(usize),
}

/// 1回のリクエストの結果
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) final_url: Url,
    pub(crate) content_type: Option<String>,
    pub(crate) content_length: Option<u64>,
    pub(crate) location: Option<String>,
    pub(crate) retry_after: Option<Duration>,
    /// 読んだ本文（読まなかったときはNone）
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) truncated: bool,
    pub(crate) elapsed: Duration,
}

pub(crate) async fn fetch_once(
    crawler: &Crawler,
    url: &Url,
    want: Want,
) -> reqwest::Result<Response> {
    tracing::debug!(%url, "GET");
    let started = Instant::now();
    let mut response = crawler.client.get(url.clone()).send().await?;
    let headers = response.headers();
    let text = |name| Some(headers.get(name)?.to_str().ok()?.to_owned());
    let content_type = text(header::CONTENT_TYPE);
    let location = text(header::LOCATION);
    let retry_after = retry_after(headers);
    let status = response.status();
    let final_url = response.url().clone();
    let content_length = response.content_length();

    let limit = match want {
        Want::Html if content_type.as_deref().is_none_or(is_html) => Some(crawler.limits.max_bytes),
        Want::Html => None,
        Want::Always(limit) => Some(limit),
    };
    let mut body = None;
    let mut truncated = false;
    if let Some(limit) = limit.filter(|_| status.is_success()) {
        let mut bytes = Vec::new();
        // 本文は届いた分ずつ受け取り、上限に達したら、それ以上は読みません。
        // 残りは`response`と一緒にドロップされ、接続は閉じられます。
        while let Some(chunk) = response.chunk().await? {
            let room = limit - bytes.len();
            if chunk.len() > room {
                bytes.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        body = Some(bytes);
    }
    Ok(Response {
        status,
        final_url,
        content_type,
        content_length,
        location,
        retry_after,
        body,
        truncated,
        elapsed: started.elapsed(),
    })
}

pub(crate) fn is_html(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("text/html") || mime.eq_ignore_ascii_case("application/xhtml+xml")
}
// ANCHOR_END: fetch

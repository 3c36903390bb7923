//! ホストごとの状態（同時リクエスト数、間隔、robots.txt）

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::StatusCode;
use texting_robots::Robot;
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::{Instant, sleep_until};
use url::Url;

use crate::Crawler;
use crate::fetch::{Want, fetch_with_retry};
use crate::record::Outcome;

// ANCHOR: host
/// ホストごとの状態の表。ホストは「スキーム・ホスト名・ポート」の組（オリジン）で区別します
#[derive(Default)]
pub(crate) struct Hosts(Mutex<HashMap<String, Arc<Host>>>);

impl Hosts {
    pub(crate) fn get(&self, url: &Url, per_host: usize) -> Arc<Host> {
        let mut hosts = self.0.lock().unwrap();
        let host = hosts
            .entry(url.origin().ascii_serialization())
            .or_insert_with(|| Arc::new(Host::new(per_host)));
        Arc::clone(host)
    }

    /// robots.txtを読み終えたホストで、`url`が禁止されているか（リダイレクトの判定に使います）
    pub(crate) fn forbids(&self, url: &Url) -> bool {
        let hosts = self.0.lock().unwrap();
        let robots = hosts
            .get(&url.origin().ascii_serialization())
            .and_then(|host| host.robots.get());
        robots.is_some_and(|robots| robots.check(url).is_err())
    }
}

pub(crate) struct Host {
    /// このホストへ同時に送れるリクエストの数
    pub(crate) permits: Semaphore,
    /// 次のリクエストを始めてよい時刻
    pub(crate) next_start: Mutex<Instant>,
    /// 最初に必要になったときに取得するrobots.txt。一時的な失敗なら、次のURLでまた取得します
    pub(crate) robots: OnceCell<Robots>,
    /// サーバーに長く待てと言われて、このホストをあきらめた理由
    pub(crate) abandoned: OnceLock<String>,
}

impl Host {
    pub(crate) fn new(per_host: usize) -> Self {
        Host {
            permits: Semaphore::new(per_host),
            next_start: Mutex::new(Instant::now()),
            robots: OnceCell::new(),
            abandoned: OnceLock::new(),
        }
    }

    /// 前のリクエストの開始から`delay`以上たつまで待ちます
    pub(crate) async fn wait_turn(&self, delay: Duration) {
        let start = {
            let mut next = self.next_start.lock().unwrap();
            let start = (*next).max(Instant::now());
            *next = start + delay; // 次の人の番を予約してから
            start
        }; // ロックを解放して、`.await`で待ちます
        sleep_until(start).await;
    }

    /// このホストへの次のリクエストを、`until`まで待たせます（Retry-After）
    pub(crate) fn pause_until(&self, until: Instant) {
        let mut next = self.next_start.lock().unwrap();
        *next = (*next).max(until);
    }
}
// ANCHOR_END: host
// ANCHOR: robots
/// robots.txtが大きすぎるときに読む上限（Googleと同じ500KiB）
pub(crate) const ROBOTS_MAX_BYTES: usize = 500 * 1024;
/// Crawl-delayに従う上限。これより長い指定は、この長さとして扱います
pub(crate) const MAX_CRAWL_DELAY: Duration = Duration::from_secs(60);

/// robots.txtから分かった、このホストの規則
pub(crate) enum Robots {
    Rules(Box<Robot>),
    /// robots.txtがない（4xx）: すべて許可
    AllowAll,
}

impl Robots {
    /// `url`を取得してよいか。だめなら、記録する結果と理由を返します
    pub(crate) fn check(&self, url: &Url) -> Result<(), (Outcome, String)> {
        match self {
            Robots::Rules(robot) if !robot.allowed(url.as_str()) => {
                Err((Outcome::Blocked, "robots.txtで禁止されています".to_owned()))
            }
            Robots::Rules(_) | Robots::AllowAll => Ok(()),
        }
    }

    pub(crate) fn crawl_delay(&self) -> Option<Duration> {
        match self {
            Robots::Rules(robot) => (robot.delay)
                .and_then(|seconds| Duration::try_from_secs_f32(seconds).ok())
                .map(|delay| delay.min(MAX_CRAWL_DELAY)),
            _ => None,
        }
    }
}

/// robots.txtを取得して規則を読みます。
///
/// 2xxなら規則、4xx（ファイルがない）ならすべて許可です。5xxや429、接続できないときは、
/// やり直しても取得できなければ`Err`（一時的な失敗）を返します。GoogleやScrapyと同じく、
/// 一時的な失敗をこの実行のあいだずっと「すべて禁止」と覚えることはせず、
/// そのホストの次のURLで改めて取得します。
pub(crate) async fn load_robots(
    crawler: &Crawler,
    host: &Host,
    url: &Url,
) -> Result<Robots, String> {
    let Ok(robots_url) = url.join("/robots.txt") else {
        return Ok(Robots::AllowAll);
    };
    let tried = fetch_with_retry(crawler, host, &robots_url, Want::Always(ROBOTS_MAX_BYTES)).await;
    match tried.result {
        Ok(response) if response.status.is_success() => {
            let body = response.body.unwrap_or_default();
            match Robot::new(&crawler.robots_agent, &body) {
                Ok(robot) => Ok(Robots::Rules(Box::new(robot))),
                Err(_) => Ok(Robots::AllowAll), // 読めない行ばかりのrobots.txtは、ないのと同じ
            }
        }
        Ok(response)
            if response.status.is_server_error()
                || response.status == StatusCode::TOO_MANY_REQUESTS =>
        {
            Err(format!(
                "robots.txtが{}を返しました（{}回試行。このホストの次のURLで取得し直します）",
                response.status, tried.count
            ))
        }
        Ok(_) => Ok(Robots::AllowAll),
        Err(e) => Err(format!(
            "robots.txtを取得できません（{}回試行）: {e}",
            tried.count
        )),
    }
}

impl Crawler {
    /// このホストへのリクエストの間隔: `--delay`とrobots.txtのCrawl-delayの長いほう
    pub(crate) fn delay(&self, host: &Host) -> Duration {
        let crawl_delay = host.robots.get().and_then(Robots::crawl_delay);
        self.limits.delay.max(crawl_delay.unwrap_or_default())
    }
}
// ANCHOR_END: robots

//! 練習問題1の解答例: 複数のサイトを同時に、行儀よく取得するWebスクレイパー`scrape`です。
//!
//! 実行例: `cargo run --release -p scraper-tool -- https://www.rust-lang.org/ --depth 1 -o pages.jsonl`
//!
//! URLごとに、ステータス・最終的なURL・タイトル・`meta description`・`h1`・リンクの数・
//! バイト数・かかった時間を1行のJSON（JSON Lines）で書き出し、最後に要約を標準エラーに出します。
//! robots.txtに従い、ホストごとの同時リクエスト数と間隔を守り、一時的な失敗は間隔を延ばしながらやり直します。
//! 終了コードは、開始URLをすべて取得できれば0、取得できなかったものがあれば1、
//! 使い方の誤りなどで始められなければ2、Ctrl-Cで中断したら130です。

use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime};

use clap::{Args, Parser};
use encoding_rs::{Encoding, UTF_8};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Client, StatusCode, redirect};
use scraper::{Html, Selector};
use serde::Serialize;
use texting_robots::Robot;
use tokio::sync::{OnceCell, Semaphore};
use tokio::task::{self, JoinSet};
use tokio::time::{Instant, sleep, sleep_until};
use url::Url;

// ANCHOR: cli
/// 複数のサイトを同時に、行儀よく取得し、URLごとの情報をJSON Linesで書き出します。
#[derive(Parser)]
#[command(name = "scrape", version)]
struct Cli {
    /// 取得を始めるURL（複数指定可）
    #[arg(value_name = "URL", required_unless_present = "input")]
    urls: Vec<String>,
    /// 開始URLを1行に1つ書いたファイル（`-`なら標準入力）。空行と`#`で始まる行は読み飛ばします
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// 結果を書くファイル（既定: 標準出力）
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    limits: Limits,
}

/// 取得の範囲と仕方の設定。すべてのタスクが共有します
#[derive(Args)]
struct Limits {
    /// 同じホストの中でリンクをたどる深さ（0なら開始URLだけ）
    #[arg(short, long, default_value_t = 0, value_name = "N")]
    depth: u32,
    /// ページの総数がこの数になるまで、たどって見つけたページを加えます（開始URLは必ず取得します）
    #[arg(long, default_value_t = 1000, value_name = "N")]
    max_pages: usize,
    /// 同時に送るリクエストの数の上限（全体）
    #[arg(short, long, default_value = "16", value_name = "N")]
    concurrency: NonZeroUsize,
    /// 1つのホストへ同時に送るリクエストの数の上限
    #[arg(long, default_value = "2", value_name = "N")]
    per_host: NonZeroUsize,
    /// 同じホストへのリクエストを始める最小の間隔（robots.txtのCrawl-delayが長ければそちら）
    #[arg(long, default_value = "100ms", value_parser = parse_duration, value_name = "TIME")]
    delay: Duration,
    /// 1回のリクエストのタイムアウト（接続から本文の最後まで）
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "TIME")]
    timeout: Duration,
    /// 一時的な失敗（接続エラー、タイムアウト、408、429、5xx）をやり直す回数
    #[arg(long, default_value_t = 3, value_name = "N")]
    retries: u32,
    /// 最初のやり直しまでに待つ時間。やり直すたびに2倍にし、最大50%のジッターを足します
    #[arg(long, default_value = "500ms", value_parser = parse_duration, value_name = "TIME")]
    backoff: Duration,
    /// 1ページの本文として読む最大のバイト数。超えた分は読まずに接続を切ります
    #[arg(long, default_value_t = 5 * 1024 * 1024, value_name = "BYTES")]
    max_bytes: usize,
    /// 名乗るUser-Agent。robots.txtの規則は、最初の`/`より前（既定では`scrape`）で選びます
    #[arg(long, default_value = concat!("scrape/", env!("CARGO_PKG_VERSION")), value_name = "UA")]
    user_agent: String,
}

/// `250ms`、`10s`、`1.5`（単位がなければ秒）のような時間を読みます
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.strip_suffix("ms") {
        Some(number) => (number, 0.001),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|n| Duration::try_from_secs_f64(n * unit).ok())
        .ok_or_else(|| format!("時間として読めません: {text}（例: 500ms、10s）"))
}
// ANCHOR_END: cli

// ANCHOR: record
/// 出力の1行。どのURLも、どう終わったかにかかわらず、ちょうど1行になります
#[derive(Serialize)]
struct Record {
    /// 取得したURL（正規化したもの）
    url: String,
    /// 開始URLからリンクをたどった回数
    depth: u32,
    outcome: Outcome,
    status: Option<u16>,
    /// リダイレクトをたどった後のURL
    final_url: Option<String>,
    content_type: Option<String>,
    /// 読んだ本文のバイト数（HTML以外は本文を読まないので、Content-Lengthの値）
    bytes: Option<u64>,
    /// 本文が`--max-bytes`を超えたので、途中で読むのをやめた
    truncated: bool,
    /// 最後の試行で、リクエストを送ってから本文を読み終えるまでの時間
    elapsed_ms: Option<u64>,
    /// 試行の回数（やり直しを含む）
    attempts: u32,
    title: Option<String>,
    description: Option<String>,
    h1: Vec<String>,
    /// `<a href>`の数
    links: Option<usize>,
    /// たどらなかったリダイレクトの行き先（そのURLは改めて取得します）
    redirect: Option<String>,
    error: Option<String>,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    /// HTMLを取得して解析した
    Page,
    /// HTML以外（画像やCSVなど）。本文は読みません
    File,
    /// 別のホストへの（またはrobots.txtで禁止されたパスへの）リダイレクト
    Redirect,
    /// 4xxや5xxが返ってきた
    HttpError,
    /// 接続できない、タイムアウト、リダイレクトのループなど
    Error,
    /// robots.txtで禁止されているので、取得しなかった
    Blocked,
}
// ANCHOR_END: record

impl Record {
    fn new(url: &str, depth: u32) -> Self {
        Record {
            url: url.to_owned(),
            depth,
            outcome: Outcome::Error,
            status: None,
            final_url: None,
            content_type: None,
            bytes: None,
            truncated: false,
            elapsed_ms: None,
            attempts: 0,
            title: None,
            description: None,
            h1: Vec::new(),
            links: None,
            redirect: None,
            error: None,
        }
    }

    fn failed(mut self, outcome: Outcome, error: String) -> Self {
        self.outcome = outcome;
        self.error = Some(error);
        self
    }
}

// ANCHOR: main
#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(summary) => summary.exit_code(),
        Err(e) => {
            eprintln!("scrape: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<Summary, Box<dyn Error>> {
    // まだタスクを1つも起動していないので、ここでファイルを同期的に読んでも困りません。
    let starts = start_urls(cli.urls, cli.input.as_deref())?;
    let mut out: Box<dyn Write> = match &cli.output {
        Some(path) => Box::new(File::create(path).map_err(|e| format!("{}: {e}", path.display()))?),
        None => Box::new(io::stdout()),
    };
    let crawler = Arc::new(Crawler::new(cli.limits).map_err(describe)?);
    let progress = progress_bar();
    let summary = crawl(crawler, starts, &mut out, &progress).await;
    progress.finish_and_clear();
    let summary = summary?;
    summary.print();
    Ok(summary)
}

/// すべてのタスクが`Arc`で共有する、取得のための道具と規則
struct Crawler {
    /// 接続プールを持つHTTPクライアント。1つを全員で使います
    client: Client,
    hosts: Arc<Hosts>,
    /// 全体で同時に送れるリクエストの数
    total: Semaphore,
    /// robots.txtの規則を選ぶ名前
    robots_agent: String,
    limits: Limits,
}

impl Crawler {
    fn new(limits: Limits) -> reqwest::Result<Self> {
        let hosts = Arc::new(Hosts::default());
        let client = build_client(&limits, Arc::clone(&hosts))?;
        let agent = limits.user_agent.split(['/', ' ']).next().unwrap_or("*");
        Ok(Crawler {
            client,
            hosts,
            total: Semaphore::new(limits.concurrency.get()),
            robots_agent: agent.to_owned(),
            limits,
        })
    }
}
// ANCHOR_END: main

/// 引数と`--input`のファイルから開始URLを集めます（URLとして正しいかは、後で1つずつ調べます）
fn start_urls(mut urls: Vec<String>, input: Option<&Path>) -> Result<Vec<String>, String> {
    if let Some(path) = input {
        let text = if path == Path::new("-") {
            let mut text = String::new();
            io::stdin().read_to_string(&mut text).map(|_| text)
        } else {
            std::fs::read_to_string(path)
        }
        .map_err(|e| format!("{}: {e}", path.display()))?;
        let lines = text.lines().map(str::trim);
        urls.extend(
            lines
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(String::from),
        );
    }
    if urls.is_empty() {
        return Err("開始URLがありません".into());
    }
    Ok(urls)
}

// ANCHOR: client
/// リダイレクトをたどる回数の上限
const MAX_REDIRECTS: usize = 10;

fn build_client(limits: &Limits, hosts: Arc<Hosts>) -> reqwest::Result<Client> {
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
        } else if attempt.url().path() == "/robots.txt" {
            attempt.follow() // robots.txtは、別のホストへのリダイレクトもたどります（RFC 9309）
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

// ANCHOR: crawl
/// 1つのURLを取得する仕事
struct Job {
    url: Url,
    depth: u32,
    /// 利用者が指定した開始URLか（終了コードを決めるのに使います）
    start: bool,
}

/// 実行中のタスクと、それぞれが受け持つ仕事
struct Running {
    tasks: JoinSet<Scraped>,
    /// タスクのIDから仕事を引く表。タスクがパニックしても、どのURLだったかが分かります
    jobs: HashMap<task::Id, Job>,
}

impl Running {
    fn spawn(&mut self, crawler: &Arc<Crawler>, url: Url, depth: u32, start: bool) {
        let crawler = Arc::clone(crawler);
        let job = Job {
            url: url.clone(),
            depth,
            start,
        };
        let handle = self
            .tasks
            .spawn(async move { scrape(&crawler, url, depth).await });
        self.jobs.insert(handle.id(), job);
    }

    /// 次に終わったタスクの仕事と結果。タスクがなくなったらNone
    async fn next(&mut self) -> Option<(Job, Scraped)> {
        let joined = self.tasks.join_next_with_id().await?;
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let job = self.jobs.remove(&id).expect("どのタスクにも仕事がある");
        let scraped = joined.map_or_else(
            |e| {
                let why = format!("内部エラー: {e}");
                Record::new(job.url.as_str(), job.depth)
                    .failed(Outcome::Error, why)
                    .into()
            },
            |(_, scraped)| scraped,
        );
        Some((job, scraped))
    }
}

async fn crawl(
    crawler: Arc<Crawler>,
    starts: Vec<String>,
    out: &mut dyn Write,
    progress: &ProgressBar,
) -> io::Result<Summary> {
    let mut summary = Summary::new();
    let mut frontier = Frontier::new(crawler.limits.max_pages);
    let mut running = Running {
        tasks: JoinSet::new(),
        jobs: HashMap::new(),
    };
    for text in starts {
        match Url::parse(&text).ok().and_then(normalize) {
            Some(url) => {
                if frontier.admit(&url, true) {
                    progress.inc_length(1);
                    running.spawn(&crawler, url, 0, true);
                }
            }
            None => {
                let why = format!("http(s)のURLとして読めません: {text}");
                let record = Record::new(&text, 0).failed(Outcome::Error, why);
                summary.add(&record, true);
                write_record(out, &record)?;
            }
        }
    }

    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let (job, scraped) = tokio::select! {
            // Ctrl-Cが押されたら、実行中のタスクの終わりを待たずにループを抜けます。
            _ = &mut ctrl_c => {
                summary.interrupted = true;
                break;
            }
            next = running.next() => match next {
                Some(next) => next,
                None => break, // すべての仕事が終わった
            },
        };
        progress.inc(1);
        progress.set_message(job.url.to_string());
        summary.add(&scraped.record, job.start);
        // 標準出力も同じ端末なら、1行を書く間だけプログレスバーを消します。
        progress.suspend(|| write_record(out, &scraped.record))?;

        // リダイレクトの行き先は同じ深さ、ページの中のリンクは1つ深い仕事にします。
        if let Some(final_url) = &scraped.final_url {
            frontier.mark_seen(final_url);
        }
        let follow = job.depth < crawler.limits.depth;
        let links = scraped.links.into_iter().filter(|_| follow);
        let next = (scraped.redirect.into_iter().map(|url| (url, job.depth)))
            .chain(links.map(|url| (url, job.depth + 1)));
        for (url, depth) in next {
            if frontier.admit(&url, false) {
                progress.inc_length(1);
                running.spawn(&crawler, url, depth, false);
            }
        }
    }
    // ここで`running`がドロップされ、まだ動いているタスクはすべてキャンセルされます。
    Ok(summary)
}

/// 1件を1行のJSONにして、1回の`write_all`で書きます。途中で止められても、書いた行は壊れていません
fn write_record(out: &mut dyn Write, record: &Record) -> io::Result<()> {
    let mut line = serde_json::to_vec(record)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}
// ANCHOR_END: crawl

// ANCHOR: frontier
/// 取得するURLの台帳。同じURLを2度取得しないように、受け付けたURLをすべて覚えます
struct Frontier {
    seen: HashSet<String>,
    admitted: usize,
    max_pages: usize,
}

impl Frontier {
    fn new(max_pages: usize) -> Self {
        Frontier {
            seen: HashSet::new(),
            admitted: 0,
            max_pages,
        }
    }

    /// まだ見ていないURLなら受け付けてtrueを返します。開始URLは`max_pages`に関係なく受け付けます
    fn admit(&mut self, url: &Url, start: bool) -> bool {
        if !start && self.admitted >= self.max_pages {
            return false;
        }
        let new = self.seen.insert(url.as_str().to_owned());
        if new {
            self.admitted += 1;
        }
        new
    }

    /// リダイレクトの行き先など、取得したことになるURLを覚えます
    fn mark_seen(&mut self, url: &Url) {
        self.seen.insert(url.as_str().to_owned());
    }
}

/// 同じページを指す書き方の違いをそろえます。http(s)でなければNone
///
/// ホスト名の大文字・小文字、既定のポート（`:80`・`:443`）、`/./`や`/../`、空のパスは、
/// `Url::parse`と`Url::join`の時点でそろっています。ここでは、ページの中の位置を表す
/// フラグメント（`#...`）と、空のクエリ（末尾の`?`）を取り除きます。
fn normalize(mut url: Url) -> Option<Url> {
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    url.set_fragment(None);
    if url.query() == Some("") {
        url.set_query(None);
    }
    Some(url)
}
// ANCHOR_END: frontier

// ANCHOR: host
/// ホストごとの状態の表。ホストは「スキーム・ホスト名・ポート」の組（オリジン）で区別します
#[derive(Default)]
struct Hosts(Mutex<HashMap<String, Arc<Host>>>);

impl Hosts {
    fn get(&self, url: &Url, per_host: usize) -> Arc<Host> {
        let mut hosts = self.0.lock().unwrap();
        let host = hosts
            .entry(url.origin().ascii_serialization())
            .or_insert_with(|| Arc::new(Host::new(per_host)));
        Arc::clone(host)
    }

    /// robots.txtを読み終えたホストで、`url`が禁止されているか（リダイレクトの判定に使います）
    fn forbids(&self, url: &Url) -> bool {
        let hosts = self.0.lock().unwrap();
        let robots = hosts
            .get(&url.origin().ascii_serialization())
            .and_then(|host| host.robots.get());
        robots.is_some_and(|robots| robots.check(url).is_err())
    }
}

struct Host {
    /// このホストへ同時に送れるリクエストの数
    permits: Semaphore,
    /// 次のリクエストを始めてよい時刻
    next_start: Mutex<Instant>,
    /// 最初に必要になったときに、1度だけ取得するrobots.txt
    robots: OnceCell<Robots>,
}

impl Host {
    fn new(per_host: usize) -> Self {
        Host {
            permits: Semaphore::new(per_host),
            next_start: Mutex::new(Instant::now()),
            robots: OnceCell::new(),
        }
    }

    /// 前のリクエストの開始から`delay`以上たつまで待ちます
    async fn wait_turn(&self, delay: Duration) {
        let start = {
            let mut next = self.next_start.lock().unwrap();
            let start = (*next).max(Instant::now());
            *next = start + delay; // 次の人の番を予約してから
            start
        }; // ロックを解放して、`.await`で待ちます
        sleep_until(start).await;
    }

    /// このホストへの次のリクエストを、`until`まで待たせます（Retry-After）
    fn pause_until(&self, until: Instant) {
        let mut next = self.next_start.lock().unwrap();
        *next = (*next).max(until);
    }
}
// ANCHOR_END: host

// ANCHOR: robots
/// robots.txtが大きすぎるときに読む上限（Googleと同じ500KiB）
const ROBOTS_MAX_BYTES: usize = 500 * 1024;
/// Crawl-delayに従う上限。これより長い指定は、この長さとして扱います
const MAX_CRAWL_DELAY: Duration = Duration::from_secs(60);

/// robots.txtから分かった、このホストの規則
enum Robots {
    Rules(Box<Robot>),
    /// robots.txtがない（4xx）: すべて許可
    AllowAll,
    /// サーバーエラーなどで規則が分からない: RFC 9309に従い、すべて禁止
    DisallowAll(String),
    /// 接続できない: ページも取得できないので、エラーとして記録します
    Unreachable(String),
}

impl Robots {
    /// `url`を取得してよいか。だめなら、記録する結果と理由を返します
    fn check(&self, url: &Url) -> Result<(), (Outcome, String)> {
        match self {
            Robots::Rules(robot) if !robot.allowed(url.as_str()) => {
                Err((Outcome::Blocked, "robots.txtで禁止されています".to_owned()))
            }
            Robots::DisallowAll(why) => Err((Outcome::Blocked, why.clone())),
            Robots::Unreachable(why) => Err((Outcome::Error, why.clone())),
            Robots::Rules(_) | Robots::AllowAll => Ok(()),
        }
    }

    fn crawl_delay(&self) -> Option<Duration> {
        match self {
            Robots::Rules(robot) => (robot.delay)
                .and_then(|seconds| Duration::try_from_secs_f32(seconds).ok())
                .map(|delay| delay.min(MAX_CRAWL_DELAY)),
            _ => None,
        }
    }
}

async fn load_robots(crawler: &Crawler, host: &Host, url: &Url) -> Robots {
    let Ok(robots_url) = url.join("/robots.txt") else {
        return Robots::AllowAll;
    };
    let tried = fetch_with_retry(crawler, host, &robots_url, Want::Always(ROBOTS_MAX_BYTES)).await;
    match tried.result {
        Ok(response) if response.status.is_success() => {
            let body = response.body.unwrap_or_default();
            match Robot::new(&crawler.robots_agent, &body) {
                Ok(robot) => Robots::Rules(Box::new(robot)),
                Err(_) => Robots::AllowAll, // 読めない行ばかりのrobots.txtは、ないのと同じ
            }
        }
        Ok(response)
            if response.status.is_server_error()
                || response.status == StatusCode::TOO_MANY_REQUESTS =>
        {
            Robots::DisallowAll(format!("robots.txtが{}を返しました", response.status))
        }
        Ok(_) => Robots::AllowAll,
        Err(e) => Robots::Unreachable(format!(
            "robots.txtを取得できません（{}回試行）: {}",
            tried.count,
            describe(e)
        )),
    }
}

impl Crawler {
    /// このホストへのリクエストの間隔: `--delay`とrobots.txtのCrawl-delayの長いほう
    fn delay(&self, host: &Host) -> Duration {
        let crawl_delay = host.robots.get().and_then(Robots::crawl_delay);
        self.limits.delay.max(crawl_delay.unwrap_or_default())
    }
}
// ANCHOR_END: robots

// ANCHOR: retry
/// バックオフで待つ時間の上限
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// これより長いRetry-Afterを指定されたら、そのURLはあきらめます
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// 最後の試行の結果と、試行の回数
struct Tried {
    result: reqwest::Result<Response>,
    count: u32,
}

/// `url`を、ホストと全体の制限を守って取得します。一時的な失敗なら、間隔を延ばしながらやり直します
async fn fetch_with_retry(crawler: &Crawler, host: &Host, url: &Url, want: Want) -> Tried {
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
            fetch_once(crawler, url, want).await
        }; // ここで2つの許可を返します。やり直しを待つ間は、ほかのURLに枠を譲ります
        let Verdict::Transient { retry_after } = verdict(&result) else {
            return Tried { result, count };
        };
        if count > limits.retries {
            return Tried { result, count };
        }
        let mut wait = backoff(limits.backoff, count);
        if let Some(after) = retry_after {
            if after > MAX_RETRY_AFTER {
                return Tried { result, count };
            }
            // 「いつまで待て」と言われたら、このホストへのほかのリクエストもそれまで止めます。
            host.pause_until(Instant::now() + after);
            wait = wait.max(after);
        }
        sleep(wait).await;
    }
}

/// 1回の試行の結果を、やり直すかどうかで分けたもの
enum Verdict {
    /// 成功、またはやり直しても変わらない失敗（404、リダイレクトのループなど）
    Final,
    /// 一時的な失敗。サーバーが待ち時間（Retry-After）を指定していれば、その時間
    Transient { retry_after: Option<Duration> },
}

fn verdict(result: &reqwest::Result<Response>) -> Verdict {
    let transient = match result {
        Ok(response) => matches!(response.status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504),
        // 接続できない、時間切れ、送信中に接続が切れた
        Err(e) => e.is_connect() || e.is_timeout() || e.is_request(),
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
fn backoff(base: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1);
    let exponential = base
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_BACKOFF);
    exponential.mul_f64(1.0 + fastrand::f64() / 2.0)
}

/// Retry-Afterヘッダーの値: 秒数（`120`）か、HTTPの日付（`Wed, 21 Oct 2026 07:28:00 GMT`）
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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
enum Want {
    /// HTMLなら`--max-bytes`まで読み、HTML以外は読まない
    Html,
    /// 種類にかかわらず、このバイト数まで読む（robots.txt）
    Always(usize),
}

/// 1回のリクエストの結果
struct Response {
    status: StatusCode,
    final_url: Url,
    content_type: Option<String>,
    content_length: Option<u64>,
    location: Option<String>,
    retry_after: Option<Duration>,
    /// 読んだ本文（読まなかったときはNone）
    body: Option<Vec<u8>>,
    truncated: bool,
    elapsed: Duration,
}

async fn fetch_once(crawler: &Crawler, url: &Url, want: Want) -> reqwest::Result<Response> {
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

fn is_html(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("text/html") || mime.eq_ignore_ascii_case("application/xhtml+xml")
}
// ANCHOR_END: fetch

// ANCHOR: scrape
/// タスクの結果: 出力する1行と、そこから見つかった次のURL
struct Scraped {
    record: Record,
    /// 同じホストへのリンク（正規化済み）
    links: Vec<Url>,
    /// たどらなかったリダイレクトの行き先
    redirect: Option<Url>,
    /// リダイレクトをたどった後のURL
    final_url: Option<Url>,
}

impl From<Record> for Scraped {
    fn from(record: Record) -> Self {
        Scraped {
            record,
            links: Vec::new(),
            redirect: None,
            final_url: None,
        }
    }
}

/// 1つのURLを取得して調べます。どんな失敗も`Record`に書き、呼び出し元にエラーとしては返しません
async fn scrape(crawler: &Crawler, url: Url, depth: u32) -> Scraped {
    let record = Record::new(url.as_str(), depth);
    let host = crawler.hosts.get(&url, crawler.limits.per_host.get());
    // 同じホストのタスクが同時にここへ来ても、robots.txtを取得するのは最初の1つだけです。
    let robots = host
        .robots
        .get_or_init(|| load_robots(crawler, &host, &url))
        .await;
    if let Err((outcome, why)) = robots.check(&url) {
        return record.failed(outcome, why).into();
    }

    let tried = fetch_with_retry(crawler, &host, &url, Want::Html).await;
    let mut record = Record {
        attempts: tried.count,
        ..record
    };
    let response = match tried.result {
        Ok(response) => response,
        Err(e) => return record.failed(Outcome::Error, describe(e)).into(),
    };
    record.status = Some(response.status.as_u16());
    record.final_url = Some(response.final_url.to_string());
    record.content_type = response.content_type.clone();
    record.elapsed_ms = Some(response.elapsed.as_millis().try_into().unwrap_or(u64::MAX));
    let mut scraped = Scraped::from(record);
    scraped.final_url = Some(response.final_url.clone());
    let record = &mut scraped.record;

    if response.status.is_redirection() {
        let target = (response.location.as_deref())
            .and_then(|location| response.final_url.join(location).ok())
            .and_then(normalize);
        record.outcome = Outcome::Redirect;
        record.redirect = target.as_ref().map(Url::to_string);
        scraped.redirect = target;
    } else if !response.status.is_success() {
        record.outcome = Outcome::HttpError;
        record.error = Some(format!("HTTP {}", response.status));
    } else if let Some(body) = response.body {
        record.outcome = Outcome::Page;
        record.bytes = Some(body.len() as u64);
        record.truncated = response.truncated;
        // HTMLの解析はCPUを使う同期の処理なので、非同期のワーカースレッドをふさがないよう、
        // ブロックしてよいスレッドで行います。
        let base = response.final_url.clone();
        let content_type = response.content_type;
        let parsed =
            task::spawn_blocking(move || parse_html(&body, content_type.as_deref(), &base)).await;
        match parsed {
            Ok(parsed) => {
                record.title = parsed.title;
                record.description = parsed.description;
                record.h1 = parsed.h1;
                record.links = Some(parsed.link_count);
                let origin = response.final_url.origin();
                scraped.links = (parsed.links.into_iter())
                    .filter(|link| link.origin() == origin)
                    .filter_map(normalize)
                    .collect();
            }
            Err(e) => {
                record.outcome = Outcome::Error;
                record.error = Some(format!("HTMLの解析に失敗しました: {e}"));
            }
        }
    } else {
        record.outcome = Outcome::File;
        record.bytes = response.content_length;
    }
    scraped
}

/// エラーとその原因を「: 」でつないだ1行にします（URLは記録にあるので含めません）
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
// ANCHOR_END: scrape

// ANCHOR: parse
/// HTMLから取り出した情報
struct Parsed {
    title: Option<String>,
    description: Option<String>,
    h1: Vec<String>,
    link_count: usize,
    /// `<a href>`を絶対URLにしたもの
    links: Vec<Url>,
}

struct Selectors {
    title: Selector,
    description: Selector,
    h1: Selector,
    links: Selector,
    base: Selector,
}

static SELECTORS: LazyLock<Selectors> = LazyLock::new(|| {
    let css = |text| Selector::parse(text).expect("固定のセレクタは正しい");
    Selectors {
        title: css("title"),
        description: css(r#"meta[name="description" i]"#),
        h1: css("h1"),
        links: css("a[href]"),
        base: css("base[href]"),
    }
});

fn parse_html(bytes: &[u8], content_type: Option<&str>, url: &Url) -> Parsed {
    let text = decode(bytes, content_type);
    let document = Html::parse_document(&text);
    let s = &*SELECTORS;
    // `<base href>`があれば、相対リンクはそれを基準にします。
    let base = (document.select(&s.base).next())
        .and_then(|base| url.join(base.attr("href")?).ok())
        .unwrap_or_else(|| url.clone());
    let hrefs: Vec<&str> = document
        .select(&s.links)
        .filter_map(|a| a.attr("href"))
        .collect();
    Parsed {
        title: document.select(&s.title).next().map(|e| squash(e.text())),
        description: (document.select(&s.description).next())
            .and_then(|meta| meta.attr("content"))
            .map(|content| squash([content])),
        h1: document.select(&s.h1).map(|e| squash(e.text())).collect(),
        link_count: hrefs.len(),
        links: hrefs
            .iter()
            .filter_map(|href| base.join(href.trim()).ok())
            .collect(),
    }
}

/// テキストをつなげて、空白（改行やタブを含む）の並びを1つの空白にまとめます
fn squash<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let text: String = parts.into_iter().collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// 文字コードは、BOM、Content-Typeの`charset`、先頭1024バイトの`<meta>`の`charset`、UTF-8の順に決めます。
/// 読めないバイトはU+FFFD（�）に置き換えます
fn decode(bytes: &[u8], content_type: Option<&str>) -> String {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]);
    let encoding = (content_type.and_then(charset).or_else(|| charset(&head)))
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        .unwrap_or(UTF_8);
    encoding.decode(bytes).0.into_owned()
}

/// `text/html; charset=Shift_JIS`や`<meta charset="euc-jp">`から、文字コードの名前を取り出します
fn charset(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let rest = &lower[lower.find("charset=")? + "charset=".len()..];
    let name: String = (rest.trim_start_matches(['"', '\'']).chars())
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        .collect();
    (!name.is_empty()).then_some(name)
}
// ANCHOR_END: parse

// ANCHOR: summary
/// 最後に標準エラーへ出す要約と、終了コード
struct Summary {
    counts: HashMap<Outcome, usize>,
    /// 読んだHTMLの本文のバイト数
    bytes: u64,
    /// 取得できなかった開始URLと、その理由
    failed_starts: Vec<String>,
    interrupted: bool,
    started: Instant,
}

impl Summary {
    fn new() -> Self {
        Summary {
            counts: HashMap::new(),
            bytes: 0,
            failed_starts: Vec::new(),
            interrupted: false,
            started: Instant::now(),
        }
    }

    fn add(&mut self, record: &Record, start: bool) {
        *self.counts.entry(record.outcome).or_default() += 1;
        if record.outcome == Outcome::Page {
            self.bytes += record.bytes.unwrap_or(0);
        }
        let failed = matches!(
            record.outcome,
            Outcome::HttpError | Outcome::Error | Outcome::Blocked
        );
        if start && failed {
            let why = record.error.as_deref().unwrap_or("");
            self.failed_starts.push(format!("{}（{why}）", record.url));
        }
    }

    fn print(&self) {
        let count = |outcome| self.counts.get(&outcome).copied().unwrap_or(0);
        let total: usize = self.counts.values().sum();
        let seconds = self.started.elapsed().as_secs_f64();
        if self.interrupted {
            eprintln!("Ctrl-Cで中断しました。それまでの結果は書き出してあります");
        }
        eprintln!(
            "{total}件: ページ {}、ファイル {}、リダイレクト {}、HTTPエラー {}、失敗 {}、robots.txtで除外 {}",
            count(Outcome::Page),
            count(Outcome::File),
            count(Outcome::Redirect),
            count(Outcome::HttpError),
            count(Outcome::Error),
            count(Outcome::Blocked),
        );
        eprintln!(
            "HTML {}バイトを{seconds:.2}秒で取得しました（{:.1}件/秒）",
            self.bytes,
            total as f64 / seconds.max(f64::EPSILON)
        );
        for failed in &self.failed_starts {
            eprintln!("取得できなかった開始URL: {failed}");
        }
    }

    fn exit_code(&self) -> ExitCode {
        if self.interrupted {
            ExitCode::from(130) // シェルの慣習: 128 + SIGINT(2)
        } else if self.failed_starts.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }
}

/// 進み具合の表示。標準エラーが端末でなければ（パイプやファイル、テスト）何も描きません
fn progress_bar() -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{spinner} {elapsed} [{bar:30}] {pos}/{len} {wide_msg}")
            .expect("固定のテンプレートは正しい")
            .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}
// ANCHOR_END: summary

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn spellings_of_the_same_page_normalise_to_one_url() {
        let base = url("HTTP://Example.COM:80/dir/page?x=1");
        let same = [
            "/a",
            "./../a#top",
            "/b/../a",
            "http://example.com/a?",
            "HTTP://EXAMPLE.com:80/a#x",
        ];
        for href in same {
            let joined = normalize(base.join(href).unwrap()).unwrap();
            assert_eq!(joined.as_str(), "http://example.com/a", "{href}");
        }
        assert_eq!(
            normalize(url("https://example.com")).unwrap().as_str(),
            "https://example.com/"
        );
        assert_eq!(
            normalize(url("https://example.com/?b=2&a=1"))
                .unwrap()
                .as_str(),
            "https://example.com/?b=2&a=1"
        );
        assert!(normalize(url("mailto:someone@example.com")).is_none());
        assert!(normalize(url("ftp://example.com/file")).is_none());
    }

    #[test]
    fn the_frontier_admits_each_url_once_and_stops_at_max_pages() {
        let mut frontier = Frontier::new(2);
        assert!(frontier.admit(&url("http://a/1"), true));
        assert!(!frontier.admit(&url("http://a/1"), false));
        assert!(frontier.admit(&url("http://a/2"), false));
        assert!(
            !frontier.admit(&url("http://a/3"), false),
            "max_pages reached"
        );
        assert!(
            frontier.admit(&url("http://a/4"), true),
            "start URLs are always admitted"
        );
        frontier.mark_seen(&url("http://a/5"));
        assert!(!frontier.admit(&url("http://a/5"), true));
    }

    #[test]
    fn durations_are_read_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn backoff_doubles_and_jitter_only_adds() {
        let base = Duration::from_millis(100);
        for _ in 0..1000 {
            let waits: Vec<Duration> = (1..=4).map(|n| backoff(base, n)).collect();
            for (n, wait) in waits.iter().enumerate() {
                let exact = base * 2u32.pow(n as u32);
                assert!(
                    exact <= *wait && *wait <= exact.mul_f64(1.5),
                    "{n}: {wait:?}"
                );
            }
            assert!(waits.windows(2).all(|w| w[0] < w[1]), "{waits:?}");
        }
        assert_eq!(
            backoff(Duration::from_secs(1), 100).as_secs() / 60,
            1,
            "capped, no overflow"
        );
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert(header::RETRY_AFTER, HeaderValue::from_str(value).unwrap());
            map
        };
        assert_eq!(retry_after(&headers("2")), Some(Duration::from_secs(2)));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let wait = retry_after(&headers(&soon)).unwrap();
        assert!(
            Duration::from_secs(28) <= wait && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn html_gives_title_description_h1s_and_links() {
        let html = r#"<!doctype html><html><head>
            <title>
              Rustの
              本 </title>
            <META NAME="Description" content="  並行処理の
               章 ">
            <base href="https://example.com/docs/">
            </head><body>
            <h1>第<b>19</b>章</h1><h1>練習問題</h1>
            <a href="ch1.html#top">1</a> <a href="/about">about</a>
            <a href="https://other.example/">他</a> <a href="mailto:x@example.com">mail</a>
            <a>名前だけ</a>
            </body></html>"#;
        let parsed = parse_html(
            html.as_bytes(),
            Some("text/html"),
            &url("https://example.com/"),
        );
        assert_eq!(parsed.title.as_deref(), Some("Rustの 本"));
        assert_eq!(parsed.description.as_deref(), Some("並行処理の 章"));
        assert_eq!(parsed.h1, ["第19章", "練習問題"]);
        assert_eq!(parsed.link_count, 4);
        let links: Vec<&str> = parsed.links.iter().map(Url::as_str).collect();
        assert_eq!(
            links,
            [
                "https://example.com/docs/ch1.html#top",
                "https://example.com/about",
                "https://other.example/",
                "mailto:x@example.com"
            ]
        );
    }

    #[test]
    fn shift_jis_is_decoded_from_the_header_or_the_meta_tag() {
        let (body, _, _) = encoding_rs::SHIFT_JIS.encode("<title>日本語のページ</title>");
        let from_header = parse_html(
            &body,
            Some("text/html; charset=Shift_JIS"),
            &url("http://a/"),
        );
        assert_eq!(from_header.title.as_deref(), Some("日本語のページ"));

        let mut with_meta =
            br#"<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">"#.to_vec();
        with_meta.extend_from_slice(&body);
        let from_meta = parse_html(&with_meta, Some("text/html"), &url("http://a/"));
        assert_eq!(from_meta.title.as_deref(), Some("日本語のページ"));

        let utf8 = parse_html(
            "<title>既定はUTF-8</title>".as_bytes(),
            None,
            &url("http://a/"),
        );
        assert_eq!(utf8.title.as_deref(), Some("既定はUTF-8"));
        assert_eq!(
            charset(r#"<meta charset="EUC-JP">"#).as_deref(),
            Some("euc-jp")
        );
        assert_eq!(charset("text/html"), None);
    }

    #[test]
    fn only_html_content_types_are_parsed() {
        assert!(is_html("text/html"));
        assert!(is_html("Text/HTML; charset=utf-8"));
        assert!(is_html("application/xhtml+xml"));
        assert!(!is_html("text/csv"));
        assert!(!is_html("image/png"));
    }

    #[test]
    fn robots_rules_block_paths_and_give_the_crawl_delay() {
        let txt = b"User-agent: *\nDisallow: /private\nCrawl-delay: 0.25\n";
        let robots = Robots::Rules(Box::new(Robot::new("scrape", txt).unwrap()));
        assert!(robots.check(&url("http://a/public")).is_ok());
        assert_eq!(
            robots.check(&url("http://a/private/x")).unwrap_err().0,
            Outcome::Blocked
        );
        assert_eq!(robots.crawl_delay(), Some(Duration::from_millis(250)));
        assert!(Robots::AllowAll.check(&url("http://a/private")).is_ok());
        let down = Robots::DisallowAll("503".into());
        assert_eq!(
            down.check(&url("http://a/")).unwrap_err().0,
            Outcome::Blocked
        );
        let gone = Robots::Unreachable("refused".into());
        assert_eq!(gone.check(&url("http://a/")).unwrap_err().0, Outcome::Error);
    }

    #[tokio::test(start_paused = true)]
    async fn a_host_spaces_request_starts_and_honours_pauses() {
        let host = Host::new(4);
        let delay = Duration::from_millis(100);
        let start = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..3 {
            host.wait_turn(delay).await;
            starts.push(start.elapsed());
        }
        assert_eq!(starts, [Duration::ZERO, delay, delay * 2]);
        host.pause_until(Instant::now() + Duration::from_secs(1));
        host.wait_turn(delay).await;
        assert_eq!(start.elapsed(), delay * 2 + Duration::from_secs(1));
    }
}

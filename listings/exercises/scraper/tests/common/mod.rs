//! テスト用の小さなWebサイトと、`scrape`を本物のプロセスとして実行する道具です。
//!
//! サイトは`127.0.0.1:0`で待ち受けるaxumのサーバーで、パスごとの応答（`Route`）を決めておきます。
//! どのパスに何回・いつリクエストが来たか、同時に処理していたリクエストの数の最大はいくつかを記録します。

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use futures::stream;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// 1つのテストが`scrape`の終わりを待つ時間の上限。これを超えたら、プロセスを止めて失敗にします
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

/// パスごとの応答
#[derive(Clone)]
pub enum Route {
    /// `<title>`・`<h1>`とリンクを持つHTML。`delay`だけ待ってから応答します
    Html {
        title: String,
        links: Vec<String>,
        delay: Duration,
    },
    /// 任意の種類の本文
    Text {
        content_type: &'static str,
        body: String,
    },
    /// 最初の`times`回は`status`（Retry-Afterの秒数つき）を返し、その後は`then`の応答
    FailFirst {
        times: usize,
        status: u16,
        retry_after: Option<u64>,
        then: Box<Route>,
    },
    /// 302で`to`へ
    Redirect(String),
    /// 先頭に`<title>`があり、そのあと終わりのないHTML
    Endless { title: String },
}

pub fn html(title: &str, links: &[&str]) -> Route {
    Route::Html {
        title: title.to_owned(),
        links: links.iter().map(|l| l.to_string()).collect(),
        delay: Duration::ZERO,
    }
}

pub fn slow(title: &str, delay: Duration) -> Route {
    Route::Html {
        title: title.to_owned(),
        links: Vec::new(),
        delay,
    }
}

pub fn robots(text: &str) -> Route {
    Route::Text {
        content_type: "text/plain",
        body: text.to_owned(),
    }
}

/// 同時に処理しているリクエストの数と、その最大
#[derive(Default)]
pub struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    fn enter(&self) -> GaugeGuard<'_> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        GaugeGuard(self)
    }

    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

struct GaugeGuard<'a>(&'a Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct SiteState {
    routes: HashMap<String, Route>,
    /// 届いたリクエストのパス（クエリを含む）と時刻
    log: Mutex<Vec<(String, Instant)>>,
    /// このサイト（ホスト）で同時に処理しているリクエスト
    pub in_flight: Gauge,
    /// すべてのサイトで共有する、同時に処理しているリクエスト
    total: Arc<Gauge>,
}

pub struct Site {
    pub addr: SocketAddr,
    pub state: Arc<SiteState>,
}

impl Site {
    /// `routes`を配るサイトを起動します。`total`は複数のサイトで共有する数え役です
    pub async fn start(routes: Vec<(&str, Route)>, total: Arc<Gauge>) -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(SiteState {
            routes: routes
                .into_iter()
                .map(|(path, route)| (path.to_owned(), route))
                .collect(),
            log: Mutex::new(Vec::new()),
            in_flight: Gauge::default(),
            total,
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Site { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `path`へのリクエストの回数
    pub fn hits(&self, path: &str) -> usize {
        self.times(path).len()
    }

    /// `path`へのリクエストが届いた時刻
    pub fn times(&self, path: &str) -> Vec<Instant> {
        let log = self.state.log.lock().unwrap();
        log.iter()
            .filter(|(p, _)| p == path)
            .map(|(_, t)| *t)
            .collect()
    }

    /// 届いたすべてのリクエストのパス
    pub fn paths(&self) -> Vec<String> {
        let log = self.state.log.lock().unwrap();
        log.iter().map(|(p, _)| p.clone()).collect()
    }
}

async fn handle(State(site): State<Arc<SiteState>>, uri: Uri) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let seen_before = {
        let mut log = site.log.lock().unwrap();
        let seen = log.iter().filter(|(p, _)| *p == path).count();
        log.push((path.clone(), Instant::now()));
        seen
    };
    let _host = site.in_flight.enter();
    let _total = site.total.enter();
    match site.routes.get(&path) {
        Some(route) => respond(route, seen_before).await,
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn respond(route: &Route, seen_before: usize) -> Response {
    match route {
        Route::Html {
            title,
            links,
            delay,
        } => {
            tokio::time::sleep(*delay).await;
            let anchors: String = links
                .iter()
                .map(|href| format!(r#"<a href="{href}">{href}</a>"#))
                .collect();
            let page = format!(
                "<!doctype html><html><head><title>{title}</title>\
                 <meta name=\"description\" content=\"{title}の説明\"></head>\
                 <body><h1>{title}</h1>{anchors}</body></html>"
            );
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
        }
        Route::Text { content_type, body } => {
            ([(header::CONTENT_TYPE, *content_type)], body.clone()).into_response()
        }
        Route::FailFirst {
            times,
            status,
            retry_after,
            then,
        } => {
            if seen_before < *times {
                let status = StatusCode::from_u16(*status).unwrap();
                let mut response = (status, "try again later").into_response();
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, seconds.to_string().parse().unwrap());
                }
                response
            } else {
                Box::pin(respond(then, seen_before)).await
            }
        }
        Route::Redirect(to) => {
            (StatusCode::FOUND, [(header::LOCATION, to.clone())]).into_response()
        }
        Route::Endless { title } => {
            let head = format!(
                "<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1>"
            );
            let filler = "<p>とても長いページです。</p>\n".repeat(100);
            let chunks = stream::once(async move { head }).chain(stream::repeat(filler));
            let body = Body::from_stream(chunks.map(Ok::<_, Infallible>));
            ([(header::CONTENT_TYPE, "text/html")], body).into_response()
        }
    }
}

/// `scrape`を1回実行した結果
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// 標準出力の各行をJSONとして読んだもの（読めない行があればパニックします）
    pub records: Vec<serde_json::Value>,
}

impl Run {
    /// `url`の記録。ちょうど1つなければパニックします
    pub fn record(&self, url: &str) -> &serde_json::Value {
        let found: Vec<_> = self.records.iter().filter(|r| r["url"] == url).collect();
        assert_eq!(
            found.len(),
            1,
            "{url} の記録が{}件あります\n{}",
            found.len(),
            self.stdout
        );
        found[0]
    }
}

pub fn parse_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("JSONとして読めない行: {e}\n{line}"))
        })
        .collect()
}

/// `scrape ARGS`を実行し、終わるまで待ちます（`RUN_LIMIT`を超えたら止めて失敗にします）
pub async fn scrape(args: &[&str]) -> Run {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_scrape"))
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_LIMIT, child)
        .await
        .unwrap_or_else(|_| panic!("scrape {args:?} が{RUN_LIMIT:?}以内に終わりません"))
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    Run {
        status: output.status,
        records: parse_lines(&stdout),
        stdout,
        stderr,
    }
}

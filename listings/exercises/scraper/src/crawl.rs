//! 取得のループ: タスクを起動し、終わったものから記録を書き、見つかったURLを次のジョブにします

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::sync::Arc;

use indicatif::ProgressBar;
use tokio::sync::mpsc;
use tokio::task::{self, JoinSet};
use url::{Origin, Url};

use crate::Crawler;
use crate::page::{Scraped, scrape};
use crate::record::{Outcome, Record};
use crate::summary::Summary;

// ANCHOR: crawl
/// 1つのURLを取得するジョブ
pub(crate) struct Job {
    pub(crate) url: Url,
    pub(crate) depth: u32,
    /// 利用者が指定した開始URLか、そのリダイレクトの行き先か（終了コードを決めるのに使います）
    pub(crate) start: bool,
    /// たどってよいオリジン。開始URL（リダイレクトの後ならその行き先）のオリジンです
    pub(crate) scope: Origin,
}

/// 実行中のタスクと、それぞれが受け持つジョブ
pub(crate) struct Running {
    pub(crate) tasks: JoinSet<Scraped>,
    /// タスクのIDからジョブを引く表。タスクがパニックしても、どのURLだったかが分かります
    pub(crate) jobs: HashMap<task::Id, Job>,
}

impl Running {
    pub(crate) fn spawn(&mut self, crawler: &Arc<Crawler>, job: Job) {
        let crawler = Arc::clone(crawler);
        let (url, depth) = (job.url.clone(), job.depth);
        let handle = self
            .tasks
            .spawn(async move { scrape(&crawler, url, depth).await });
        self.jobs.insert(handle.id(), job);
    }

    /// 次に終わったタスクのジョブと結果。タスクがなくなったらNone
    pub(crate) async fn next(&mut self) -> Option<(Job, Scraped)> {
        let joined = self.tasks.join_next_with_id().await?;
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let job = self.jobs.remove(&id).expect("どのタスクにもジョブがある");
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

pub(crate) async fn crawl(
    crawler: Arc<Crawler>,
    starts: Vec<String>,
    out: Box<dyn Write + Send>,
    progress: &ProgressBar,
) -> io::Result<Summary> {
    let mut summary = Summary::new();
    let mut out = RecordWriter::start(out, progress.clone());
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
                    let scope = url.origin();
                    running.spawn(
                        &crawler,
                        Job {
                            url,
                            depth: 0,
                            start: true,
                            scope,
                        },
                    );
                }
            }
            None => {
                let why = format!("http(s)のURLとして読めません: {text}");
                let record = Record::new(&text, 0).failed(Outcome::Error, why);
                summary.add(&record, true);
                out.write(&record).await?;
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
                None => break, // すべてのタスクが終わった
            },
        };
        progress.inc(1);
        progress.set_message(job.url.to_string());
        let Scraped {
            mut record,
            links,
            redirect,
            final_url,
        } = scraped;
        if let Some(final_url) = &final_url {
            frontier.mark_seen(final_url);
        }

        // ANCHOR: scope
        // リダイレクトの行き先は、同じ深さのジョブにします。開始URLのリダイレクトは、利用者が
        // 頼んだページの続きなので、どのホストへでもたどり、行き先も開始URLとして扱います（失敗すれば
        // 終了コードに表れます）。それ以外のリダイレクトには、リンクと同じ範囲の規則を当てます。
        // 範囲外へのリダイレクトをたどると、サイトの「オープンリダイレクト」1つで、
        // 無関係なホストまで取得してしまいます。
        let mut next = Vec::new();
        if let Some(url) = redirect {
            if job.start {
                let scope = url.origin();
                next.push(Job {
                    url,
                    depth: job.depth,
                    start: true,
                    scope,
                });
            } else if url.origin() == job.scope {
                next.push(Job {
                    url,
                    depth: job.depth,
                    start: false,
                    scope: job.scope.clone(),
                });
            } else {
                tracing::info!(from = %job.url, to = %url, "範囲外へのリダイレクトはたどりません");
                record.error = Some("リダイレクト先が取得の範囲外なので、たどりません".into());
            }
        }
        // ページの中のリンクは1つ深いジョブにします。`scrape`が、ページと同じオリジンの
        // リンクだけを返します（ページは範囲内なので、範囲の中のリンクだけです）。
        if job.depth < crawler.limits.depth {
            next.extend(links.into_iter().map(|url| Job {
                url,
                depth: job.depth + 1,
                start: false,
                scope: job.scope.clone(),
            }));
        }
        // ANCHOR_END: scope
        summary.add(&record, job.start);
        out.write(&record).await?;
        for job in next {
            if frontier.admit(&job.url, job.start) {
                progress.inc_length(1);
                running.spawn(&crawler, job);
            }
        }
    }
    // `JoinSet`をドロップすると、まだ動いているタスクはすべて`abort`でキャンセルされます。
    drop(running);
    out.finish().await?;
    Ok(summary)
}

/// 記録を書き出す専用のスレッド。
///
/// ファイルや標準出力への書き込みはブロックする処理なので、非同期のループの中では行いません。
/// 1件ずつ1行のJSONにしてチャネルで渡し、このスレッドが1回の`write_all`と`flush`で書きます。
/// 途中で止められても、書いた行は壊れていません。チャネルには上限があるので、
/// 出力先が詰まれば（遅いパイプなど）、ループも待たされます。
pub(crate) struct RecordWriter {
    pub(crate) lines: mpsc::Sender<Vec<u8>>,
    pub(crate) thread: task::JoinHandle<io::Result<()>>,
}

impl RecordWriter {
    pub(crate) fn start(mut out: Box<dyn Write + Send>, progress: ProgressBar) -> Self {
        let (lines, mut rx) = mpsc::channel::<Vec<u8>>(256);
        let thread = task::spawn_blocking(move || {
            while let Some(line) = rx.blocking_recv() {
                // 標準出力も同じ端末なら、1行を書く間だけプログレスバーを消します。
                progress.suspend(|| {
                    out.write_all(&line)?;
                    out.flush()
                })?;
            }
            Ok(())
        });
        RecordWriter { lines, thread }
    }

    pub(crate) async fn write(&mut self, record: &Record) -> io::Result<()> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        match self.lines.send(line).await {
            Ok(()) => Ok(()),
            // 受信側が閉じるのは、書き込みに失敗したスレッドが終わったときだけです。その理由を返します
            Err(_) => match (&mut self.thread).await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Err(io::Error::other("書き出しのスレッドが先に終わりました")),
                Err(e) => Err(io::Error::other(e)),
            },
        }
    }

    /// 渡した行をすべて書き終えるまで待ちます
    pub(crate) async fn finish(self) -> io::Result<()> {
        drop(self.lines);
        self.thread.await.map_err(io::Error::other)?
    }
}
// ANCHOR_END: crawl
// ANCHOR: frontier
/// 取得するURLの台帳。同じURLを2度取得しないように、受け付けたURLをすべて覚えます
pub(crate) struct Frontier {
    pub(crate) seen: HashSet<String>,
    pub(crate) admitted: usize,
    pub(crate) max_pages: usize,
}

impl Frontier {
    pub(crate) fn new(max_pages: usize) -> Self {
        Frontier {
            seen: HashSet::new(),
            admitted: 0,
            max_pages,
        }
    }

    /// まだ見ていないURLなら受け付けてtrueを返します。開始URLは`max_pages`に関係なく受け付けます
    pub(crate) fn admit(&mut self, url: &Url, start: bool) -> bool {
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
    pub(crate) fn mark_seen(&mut self, url: &Url) {
        self.seen.insert(url.as_str().to_owned());
    }
}

/// 同じページを指す書き方の違いをそろえます。http(s)でなければNone
///
/// ホスト名の大文字・小文字、既定のポート（`:80`・`:443`）、`/./`や`/../`、空のパスは、
/// `Url::parse`と`Url::join`の時点でそろっています。ここでは、ページの中の位置を表す
/// フラグメント（`#...`）と、空のクエリ（末尾の`?`）を取り除きます。
pub(crate) fn normalize(mut url: Url) -> Option<Url> {
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

//! 1つのURLを取得して調べる: robots.txtの確認、取得、HTMLの解析、文字コードの判定

use std::error::Error;
use std::sync::LazyLock;

use encoding_rs::{Encoding, UTF_8};
use scraper::{Html, Selector};
use tokio::task;
use url::Url;

use crate::Crawler;
use crate::crawl::normalize;
use crate::fetch::{Want, fetch_with_retry};
use crate::host::load_robots;
use crate::record::{Outcome, Record};

// ANCHOR: scrape
/// タスクの結果: 出力する1行と、そこから見つかった次のURL
pub(crate) struct Scraped {
    pub(crate) record: Record,
    /// 同じホストへのリンク（正規化済み）
    pub(crate) links: Vec<Url>,
    /// たどらなかったリダイレクトの行き先
    pub(crate) redirect: Option<Url>,
    /// リダイレクトをたどった後のURL
    pub(crate) final_url: Option<Url>,
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
pub(crate) async fn scrape(crawler: &Crawler, url: Url, depth: u32) -> Scraped {
    let record = Record::new(url.as_str(), depth);
    let host = crawler.hosts.get(&url, crawler.limits.per_host.get());
    // 同じホストのタスクが同時にここへ来ても、robots.txtを取得するのは最初の1つだけです。
    let robots = host
        .robots
        .get_or_try_init(|| load_robots(crawler, &host, &url))
        .await;
    let robots = match robots {
        Ok(robots) => robots,
        Err(why) => {
            tracing::warn!(%url, "{why}");
            return record.failed(Outcome::Error, why).into();
        }
    };
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
        Err(e) => return record.failed(Outcome::Error, e.to_string()).into(),
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
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        // reqwestは末尾に「 for url (…)」を付けます。URLは記録にあるので、ここでは除きます。
        if let Some(without) = text.strip_suffix(&format!(" for url ({url})")) {
            text.truncate(without.len());
        }
    }
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
pub(crate) struct Parsed {
    pub(crate) title: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) h1: Vec<String>,
    pub(crate) link_count: usize,
    /// `<a href>`を絶対URLにしたもの
    pub(crate) links: Vec<Url>,
}

pub(crate) struct Selectors {
    pub(crate) title: Selector,
    pub(crate) description: Selector,
    pub(crate) h1: Selector,
    pub(crate) links: Selector,
    pub(crate) base: Selector,
}

pub(crate) static SELECTORS: LazyLock<Selectors> = LazyLock::new(|| {
    let css = |text| Selector::parse(text).expect("固定のセレクタは正しい");
    Selectors {
        title: css("title"),
        description: css(r#"meta[name="description" i]"#),
        h1: css("h1"),
        links: css("a[href]"),
        base: css("base[href]"),
    }
});

pub(crate) fn parse_html(bytes: &[u8], content_type: Option<&str>, url: &Url) -> Parsed {
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
pub(crate) fn squash<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let text: String = parts.into_iter().collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// 文字コードは、BOM、Content-Typeの`charset`、先頭1024バイトの`<meta>`の`charset`、UTF-8の順に決めます。
/// 読めないバイトはU+FFFD（�）に置き換えます
pub(crate) fn decode(bytes: &[u8], content_type: Option<&str>) -> String {
    let encoding = (content_type.and_then(charset))
        .or_else(|| meta_charset(&bytes[..bytes.len().min(1024)]))
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        .unwrap_or(UTF_8);
    encoding.decode(bytes).0.into_owned()
}

/// 先頭のバイト列から、`<meta charset=…>`か`<meta http-equiv content="…; charset=…">`の
/// 文字コードを探します（HTML仕様の「プリスキャン」を簡単にしたもの）。
/// コメント（`<!-- -->`）の中と、`<meta>`以外のタグや本文に書かれた`charset=`は見ません
pub(crate) fn meta_charset(head: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let mut rest = head.as_str();
    while let Some(open) = rest.find('<') {
        rest = &rest[open..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        let is_meta = tag
            .strip_prefix("<meta")
            .is_some_and(|after| after.starts_with(|c: char| c.is_ascii_whitespace() || c == '/'));
        if is_meta && let Some(name) = charset(tag) {
            return Some(name);
        }
        rest = &rest[end.min(rest.len())..];
        rest = rest.get(1..).unwrap_or("");
    }
    None
}

/// `text/html; charset=Shift_JIS`や`<meta charset="euc-jp">`から、文字コードの名前を取り出します
pub(crate) fn charset(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let rest = &lower[lower.find("charset=")? + "charset=".len()..];
    let name: String = (rest.trim_start_matches(['"', '\'']).chars())
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        .collect();
    (!name.is_empty()).then_some(name)
}
// ANCHOR_END: parse

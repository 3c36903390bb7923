//! ブラウザの入り口: `/`でページを配り、`/ws`のWebSocketを同じ`connection`につなぎます。
//! HTTPの接続も、開いているあいだ席（`--max-clients`）を1つ使います。

use std::future::ready;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::serve::{Listener, ListenerExt};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::connection::{Chat, connection};
use crate::protocol::{Input, Output};

/// WebSocketの1メッセージの絶対的な上限。`--max-line`を超える行はこれより手前でエラーにします。
const WS_MAX_MESSAGE: usize = 64 * 1024;

// ANCHOR: serve_http
/// HTTPのサーバーを動かします。`shutdown`が取り消されると、新しい接続を受け付けなくなります。
pub async fn serve_http(chat: Chat, listener: TcpListener) {
    let seated = SeatedListener {
        listener,
        seats: Arc::clone(&chat.seats),
        full: chat.full_message(),
        tracker: chat.tracker.clone(),
    }
    .tap_io(|io| {
        let _ = io.stream.set_nodelay(true);
    });
    let shutdown = chat.shutdown.clone();
    let app = Router::new()
        .route("/", get(index))
        .route("/ws", get(websocket))
        .with_state(chat);
    let server = axum::serve(
        seated,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned());
    if let Err(e) = server.await {
        warn!(error = %e, "HTTPサーバーが止まりました");
    }
}
// ANCHOR_END: serve_http

// ANCHOR: seated
/// 受け付けたHTTPの接続ごとに席を1つ取る`Listener`。席がなければ503を返して閉じます。
/// WebSocketに切り替わらないままの接続も、こうして`--max-clients`に数えられます。
struct SeatedListener {
    listener: TcpListener,
    seats: Arc<Semaphore>,
    full: String,
    tracker: TaskTracker,
}

/// 席を持ったままの接続。ドロップされると（接続が閉じると）席が空きます。
/// WebSocketに切り替わったあとも、axumはこの値をそのまま使い続けます。
struct Seated {
    stream: TcpStream,
    _seat: OwnedSemaphorePermit,
}

impl Listener for SeatedListener {
    type Io = Seated;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Seated, SocketAddr) {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "HTTPの接続を受け付けられませんでした");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match Arc::clone(&self.seats).try_acquire_owned() {
                Ok(seat) => {
                    return (
                        Seated {
                            stream,
                            _seat: seat,
                        },
                        peer,
                    );
                }
                Err(_) => {
                    info!(%peer, "満員なのでHTTPの接続を断りました");
                    self.tracker.spawn(refuse_http(stream, self.full.clone()));
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// 満員を`503 Service Unavailable`で伝えて閉じます。
async fn refuse_http(stream: TcpStream, line: String) {
    let body = format!("{line}\n");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nretry-after: 10\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    crate::tcp::say_and_close(stream, response.as_bytes()).await;
}
// ANCHOR_END: seated

impl AsyncRead for Seated {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Seated {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

// ANCHOR: websocket
async fn websocket(
    upgrade: WebSocketUpgrade,
    headers: HeaderMap,
    State(chat): State<Chat>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if let Err(origin) = check_origin(&headers, &chat.config.allowed_origins) {
        warn!(%peer, origin, "許可していないオリジンからの/wsへの接続を断りました");
        return (StatusCode::FORBIDDEN, "このページからは接続できません\n").into_response();
    }
    upgrade
        .max_message_size(WS_MAX_MESSAGE)
        .on_upgrade(move |socket| {
            let max_line = chat.config.max_line;
            let (sink, stream) = socket.split();
            // WebSocketの1メッセージを、TCPの1行と同じ`Input`に変えます。
            let lines = stream.filter_map(move |message| ready(ws_input(message, max_line)));
            let output = sink.with(|output: Output| {
                ready(Ok::<_, axum::Error>(match output {
                    Output::Line(line) => Message::text(&*line),
                    Output::Ping(n) => Message::Ping(n.to_be_bytes().to_vec().into()),
                }))
            });
            chat.tracker
                .clone()
                .track_future(connection(chat, peer, "ws", lines, output))
        })
}

fn ws_input(message: Result<Message, axum::Error>, max_line: usize) -> Option<io::Result<Input>> {
    let text = match &message {
        Ok(Message::Text(text)) => text.as_str(),
        Ok(Message::Binary(bytes)) => match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => return Some(Ok(Input::NotUtf8)),
        },
        // ブラウザは、サーバーのPingにPongを自動で返します。
        Ok(Message::Pong(_)) => return Some(Ok(Input::Pong)),
        // 相手からのPingにはPongが自動で返り、Closeのあとはストリームが終わります。
        Ok(Message::Ping(_) | Message::Close(_)) => return None,
        Err(e) => return Some(Err(io::Error::other(e.to_string()))),
    };
    Some(Ok(if text.len() > max_line {
        Input::TooLong
    } else {
        Input::Line(text.to_string())
    }))
}
// ANCHOR_END: websocket

// ANCHOR: origin
/// `/ws`に接続してよいページかを、ブラウザが付ける`Origin`ヘッダーで確かめます。
///
/// ほかのサイトのページのスクリプトも、利用者のブラウザからこのサーバーにWebSocketで接続できます
/// （クロスサイトWebSocketハイジャック）。同じオリジン（`Origin`の`ホスト:ポート`が`Host`と同じ）と、
/// `--allow-origin`で許したオリジンだけを通します。`Origin`を付けないのはブラウザ以外のクライアントで、
/// それは`nc`と同じく通します。
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), String> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().map_err(|_| format!("{origin:?}"))?;
    let host = headers.get(HOST).and_then(|host| host.to_str().ok());
    let authority = origin
        .split_once("://")
        .map(|(_scheme, authority)| authority);
    let same_origin = matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h));
    let listed = allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin));
    if same_origin || listed {
        Ok(())
    } else {
        Err(origin.to_string())
    }
}
// ANCHOR_END: origin

async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

/// `/`で配るページ。WebSocketで`/ws`につなぎ、1メッセージを1行として送受信します。
const INDEX_HTML: &str = r#"<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>チャット</title>
<style>
  body { font-family: sans-serif; max-width: 48em; margin: 1em auto; padding: 0 1em; }
  #log { height: 70vh; overflow-y: auto; border: 1px solid #ccc; padding: .5em; white-space: pre-wrap; }
  #log .me { color: #666; }
  form { display: flex; gap: .5em; margin-top: .5em; }
  #line { flex: 1; font-size: 1em; padding: .3em; }
</style>
</head>
<body>
<div id="log"></div>
<form id="form">
  <input id="line" autocomplete="off" autofocus placeholder="メッセージ、または /nick 名前・/join 部屋・/who・/rooms・/help">
  <button>送信</button>
</form>
<script>
  const log = document.getElementById("log");
  const line = document.getElementById("line");
  function show(text, mine) {
    const div = document.createElement("div");
    div.textContent = text; // innerHTMLではないので、受け取った行がHTMLとして解釈されることはありません
    if (mine) div.className = "me";
    log.append(div);
    log.scrollTop = log.scrollHeight;
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws`);
  socket.onmessage = (event) => show(event.data, false);
  socket.onclose = () => show("*** 接続が閉じられました", false);
  document.getElementById("form").onsubmit = (event) => {
    event.preventDefault();
    if (line.value === "" || socket.readyState !== WebSocket.OPEN) return;
    socket.send(line.value);
    if (!line.value.startsWith("/")) show("> " + line.value, true);
    line.value = "";
  };
</script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            headers.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    #[test]
    fn only_the_same_origin_and_listed_origins_may_connect() {
        let none: &[String] = &[];
        let listed = ["https://chat.example.com/".to_string()];
        let host = "127.0.0.1:8080";
        assert!(check_origin(&headers(Some("http://127.0.0.1:8080"), host), none).is_ok());
        assert!(check_origin(&headers(None, host), none).is_ok());
        assert!(check_origin(&headers(Some("https://evil.example"), host), none).is_err());
        assert!(check_origin(&headers(Some("http://127.0.0.1:9999"), host), none).is_err());
        assert!(check_origin(&headers(Some("null"), host), none).is_err());
        assert!(check_origin(&headers(Some("https://chat.example.com"), host), &listed).is_ok());
    }
}

//! チャットサーバーのプログラム。中身はライブラリ（`src/lib.rs`）にあり、ここは設定・ログ・シグナルだけです。
//!
//! 実行方法: `cargo run -p chat`（止めるときはCtrl-C、または`kill`でSIGTERM）
//! 別の端末で`nc 127.0.0.1 7878`とするか、ブラウザで http://127.0.0.1:8080/ を開きます。
//! 付属のクライアントは`cargo run -p chat --bin chat-client`です。
//! LANのほかの人にも使ってもらうときは`--addr 0.0.0.0:7878 --http-addr 0.0.0.0:8080`で起動します。
//! ログの量は`-v`・`-q`か、環境変数`RUST_LOG`で変えられます（例: `RUST_LOG=debug`）。

use std::error::Error;
use std::io::{self, IsTerminal};
use std::sync::Arc;

use chat::Config;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

// ANCHOR: main
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let config = Arc::new(Config::parse());
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(config.log_level().as_str()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();

    // 接続1つにファイル記述子を1つ使うので、`--max-clients`に足りるように上げておきます。
    let wanted = config.max_clients as u64 + 64;
    match chat::raise_open_files(wanted) {
        Ok(limit) if limit < wanted => warn!(
            limit,
            "開けるファイルの数が--max-clientsより少ないので、その前に接続を受け付けられなくなります"
        ),
        Ok(_) => {}
        Err(e) => warn!(error = %e, "開けるファイルの数を確かめられませんでした"),
    }
    // シグナルは、待ち受けを始めて「起動しました」と知らせる前に登録します。登録の前に届いた
    // SIGINTは既定の動作（即終了）になるか、親が無視する設定なら黙って消えてしまうからです。
    let stop = stop_signals()?;
    let tcp = chat::listen(config.addr)
        .map_err(|e| format!("{}で待ち受けられません: {e}", config.addr))?;
    let http = chat::listen(config.http_addr)
        .map_err(|e| format!("{}で待ち受けられません: {e}", config.http_addr))?;
    let (tcp_addr, http_addr) = (tcp.local_addr()?, http.local_addr()?);
    println!(
        "TCP: {tcp_addr}（nc {} {}で接続できます）",
        tcp_addr.ip(),
        tcp_addr.port()
    );
    println!("HTTP: http://{http_addr}/（ブラウザで開きます）");
    info!("起動しました。Ctrl-Cで停止します");

    let shutdown = CancellationToken::new();
    let server = tokio::spawn(chat::serve(config, tcp, http, shutdown.clone()));
    let signal = stop.await;
    info!("{signal}を受け取りました。全員に知らせて停止します");
    shutdown.cancel();
    server.await?;
    Ok(())
}

/// Ctrl-C（SIGINT）か、`kill`や`docker stop`のSIGTERMを受け取る準備をして、
/// どちらかが届いたら終わる`Future`を返します。
#[cfg(unix)]
fn stop_signals() -> io::Result<impl Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    // `signal`を呼んだ時点で登録されます（返ってきた`Signal`を待つ前に届いたものも残ります）。
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => "Ctrl-C（SIGINT）",
            _ = terminate.recv() => "SIGTERM",
        }
    })
}

#[cfg(not(unix))]
fn stop_signals() -> io::Result<impl Future<Output = &'static str>> {
    let ctrl_c = tokio::signal::ctrl_c();
    Ok(async move {
        let _ = ctrl_c.await;
        "Ctrl-C"
    })
}
// ANCHOR_END: main

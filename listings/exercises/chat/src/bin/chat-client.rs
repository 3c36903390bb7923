//! 練習問題3の解答例のクライアント: 標準入力の行をサーバーへ送り、サーバーからの行を表示します。
//!
//! 実行方法: `cargo run -p chat --bin chat-client -- --nick alice`
//! （先に別の端末で`cargo run -p chat`としてサーバーを起動しておきます）
//! Ctrl-D（標準入力の終わり）で`/quit`を送って終わります。サーバーが閉じたときも終わります。

use std::error::Error;
use std::io::{self, BufRead, Write};
use std::thread;
use std::time::Duration;

use clap::Parser;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec};

/// チャットサーバーに接続する端末用のクライアント
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// サーバーの行プロトコルのアドレス
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: String,
    /// 接続してすぐ名乗る名前（`/nick 名前`を送ります）
    #[arg(long)]
    nick: Option<String>,
}

/// サーバーから受け取る1行の上限。サーバーの行はこれより十分短いはずです。
const MAX_LINE: usize = 64 * 1024;
/// 標準入力が終わって`/quit`を送ったあと、サーバーが閉じるのを待つ上限。
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

// ANCHOR: stdin
/// 標準入力を専用のスレッドで1行ずつ読み、チャネルで渡します。
///
/// `tokio::io::stdin`も内部でブロックする読み込みを別スレッドで行いますが、その読み込みは
/// キャンセルできず、終了時にランタイムがそのスレッドを待ってしまうことがあります。
/// 普通のスレッドなら、`main`が返ればプロセスごと終わります。
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            // 受信側（`main`）がもういなければ終わります。
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
        // ここで`tx`がドロップされ、受信側は`None`（入力の終わり）を受け取ります。
    });
    rx
}
// ANCHOR_END: stdin

fn show(line: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

// ANCHOR: main
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let stream = TcpStream::connect(&args.addr)
        .await
        .map_err(|e| format!("{}に接続できません: {e}", args.addr))?;
    let (reader, writer) = stream.into_split();
    let mut from_server = FramedRead::new(reader, LinesCodec::new_with_max_length(MAX_LINE));
    let mut to_server = FramedWrite::new(writer, LinesCodec::new());
    if let Some(nick) = &args.nick {
        to_server.send(format!("/nick {nick}")).await?;
    }

    let mut input = stdin_lines();
    loop {
        tokio::select! {
            line = input.recv() => match line {
                Some(line) => to_server.send(line).await?,
                None => break, // 標準入力の終わり（Ctrl-D）
            },
            line = from_server.next() => match line {
                // サーバーが生きているかを確かめに来たら、表示せずに答えます。
                Some(Ok(line)) if line.starts_with("PING") => {
                    to_server.send(line.replacen("PING", "PONG", 1)).await?;
                }
                Some(line) => show(&line?)?,
                None => {
                    eprintln!("*** サーバーが接続を閉じました");
                    return Ok(());
                }
            },
        }
    }

    // あいさつを受け取ってから終わるために、`/quit`を送ってサーバーが閉じるのを待ちます。
    to_server.send("/quit").await?;
    let rest = async {
        while let Some(line) = from_server.next().await {
            show(&line?)?;
        }
        Ok::<_, Box<dyn Error>>(())
    };
    tokio::time::timeout(QUIT_TIMEOUT, rest)
        .await
        .map_err(|_| "サーバーが接続を閉じませんでした")??;
    Ok(())
}
// ANCHOR_END: main

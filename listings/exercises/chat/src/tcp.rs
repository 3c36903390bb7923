//! 行プロトコルの入り口: TCPの接続を受け付け、ソケットを`Input`のストリームと`Output`の`Sink`に変えます。

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::timeout;
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::{info, warn};

use crate::connection::{Chat, FAREWELL_TIMEOUT, connection};
use crate::protocol::{LineDecoder, LineEncoder};

// ANCHOR: tcp
pub async fn accept_tcp(chat: Chat, listener: TcpListener) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // ファイル記述子が足りない（EMFILE）などは一時的なことが多いので、少し待って続けます。
                    warn!(error = %e, "接続を受け付けられませんでした");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = chat.shutdown.cancelled() => return,
        };
        // 席（許可証）は接続のタスクが持ち、タスクが終わるとドロップされて空きます（RAII）。
        let Ok(seat) = Arc::clone(&chat.seats).try_acquire_owned() else {
            info!(%peer, "満員なので断りました");
            chat.tracker.spawn(refuse(stream, chat.full_message()));
            continue;
        };
        let chat = chat.clone();
        // ここでタスクを起動するので、次の接続をすぐ受け付けられます。
        chat.tracker
            .clone()
            .spawn(tcp_connection(chat, stream, peer, seat));
    }
}

async fn tcp_connection(
    chat: Chat,
    stream: TcpStream,
    peer: SocketAddr,
    _seat: OwnedSemaphorePermit,
) {
    // チャットの行は小さいので、Nagleのアルゴリズムで待たせずにすぐ送ります。
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let lines = FramedRead::new(reader, LineDecoder::new(chat.config.max_line));
    let output = FramedWrite::new(writer, LineEncoder);
    connection(chat, peer, "tcp", lines, output).await;
}

/// 満員を1行で伝えて閉じます。
async fn refuse(stream: TcpStream, line: String) {
    say_and_close(stream, format!("{line}\n").as_bytes()).await;
}

/// `bytes`を書いてから閉じます。相手が送ってきたものを読まずに閉じると、カーネルは
/// FINの代わりにRSTを送り、相手がまだ読んでいない`bytes`まで捨てられることがあるので、
/// 相手が閉じるまで（長くても`FAREWELL_TIMEOUT`）読み捨ててから閉じます。
pub(crate) async fn say_and_close(mut stream: TcpStream, bytes: &[u8]) {
    let _ = timeout(FAREWELL_TIMEOUT, async {
        stream.write_all(bytes).await?;
        stream.shutdown().await?;
        let mut sink = [0; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}
// ANCHOR_END: tcp

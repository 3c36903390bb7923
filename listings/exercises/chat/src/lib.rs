//! 練習問題3の解答例: TCP（`nc`）とWebSocket（ブラウザ）の両方で話せるチャットサーバー。
//!
//! - [`config`]は、コマンドラインオプションと既定値
//! - [`protocol`]は、行プロトコル（届く行、送る行、切断の理由、名前と本文の規則）
//! - [`hub`]は、部屋と名前の状態を1つのタスクで持ち、バイト数に上限のある送信キューへ配るハブ
//! - [`connection`]は、1つの接続の一生（送りすぎの制限、PING、別れのあいさつ）
//! - [`tcp`]と[`web`]は、2つの入り口
//!
//! プログラムの`main`（`src/main.rs`）は、設定を読んで[`serve`]を呼び、シグナルを待つだけです。

pub mod config;
pub mod connection;
pub mod hub;
pub mod protocol;
pub mod tcp;
pub mod web;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::Config;
use connection::Chat;

/// `shutdown`のあと、すべての接続が閉じるのを待つ上限。
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

// ANCHOR: serve
/// 2つの入り口で受け付けを始め、`shutdown`が取り消されたら全員に知らせて、閉じ終わるまで待ちます。
pub async fn serve(
    config: Arc<Config>,
    tcp: TcpListener,
    http: TcpListener,
    shutdown: CancellationToken,
) {
    let chat = Chat::start(config, shutdown.clone());
    let tracker = chat.tracker.clone();
    tracker.spawn(tcp::accept_tcp(chat.clone(), tcp));
    tracker.spawn(web::serve_http(chat, http));

    shutdown.cancelled().await;
    // すべての接続のタスクの`select!`で`cancelled()`が完了し、別れのあいさつを送って閉じます。
    tracker.close();
    if timeout(SHUTDOWN_TIMEOUT, tracker.wait()).await.is_err() {
        warn!("時間内に閉じなかった接続がありました");
    }
    info!("停止しました");
}
// ANCHOR_END: serve

/// 待ち受けを始めます。一度に多くの接続が来ても断らないように、受け付け待ちの列を長くします。
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// 開けるファイルの数のソフトリミットを、ハードリミットの範囲で`wanted`まで上げます。
/// 上げたあとの値を返します（Unix以外では何もしません）。
pub fn raise_open_files(wanted: u64) -> io::Result<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimitとsetrlimitは、渡した構造体を読み書きするだけです。
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return Err(io::Error::last_os_error());
            }
            let wanted = (wanted as libc::rlim_t).min(limit.rlim_max);
            if limit.rlim_cur < wanted {
                limit.rlim_cur = wanted;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        #[allow(clippy::unnecessary_cast, reason = "rlim_t is not u64 everywhere")]
        Ok(limit.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    Ok(wanted)
}

//! Pythonの非同期コンテキストマネージャ（`async with`）の代わりに、
//! 明示的な`async fn close(self)`と、それを必ず呼ぶ関数、最後の砦の`Drop`を使います。
//!
//! 実行方法: `cargo run -p async-resource`
//! 成功した場合も失敗した場合も接続が閉じられること、`close`を忘れると`Drop`が
//! 後始末のタスクを起動するしかないことを表示します。

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::sleep;

/// 開いている接続の数を数えるだけの、模擬のデータベースサーバー。
#[derive(Debug, Default)]
pub struct Server {
    open: AtomicUsize,
}

impl Server {
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

#[derive(Debug, PartialEq)]
pub struct QueryError(String);

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SQLの構文エラー: {}", self.0)
    }
}

impl Error for QueryError {}

// ANCHOR: connection
pub struct Connection {
    name: String,
    server: Arc<Server>,
    closed: bool,
}

impl Connection {
    /// `__aenter__`に当たります。接続にも時間がかかります。
    pub async fn open(server: &Arc<Server>, name: &str) -> Connection {
        println!("{name}: 非同期で接続します");
        sleep(Duration::from_millis(100)).await;
        server.open.fetch_add(1, Ordering::SeqCst);
        Connection {
            name: name.to_string(),
            server: Arc::clone(server),
            closed: false,
        }
    }

    pub async fn query(&self, sql: &str) -> Result<String, QueryError> {
        sleep(Duration::from_millis(100)).await;
        match sql.strip_prefix("SELECT ") {
            Some(what) => Ok(format!("{what}件の行")),
            None => Err(QueryError(sql.to_string())),
        }
    }

    /// `__aexit__`に当たります。`self`を受け取るので、閉じた後の接続は使えません。
    pub async fn close(mut self) {
        println!("{}: 非同期で切断します", self.name);
        sleep(Duration::from_millis(100)).await; // サーバーに別れを告げる往復
        self.server.open.fetch_sub(1, Ordering::SeqCst);
        self.closed = true;
    } // ここで`self`がドロップされますが、`closed`なので`Drop`は何もしません
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        // `drop`は普通の関数なので`.await`できません。できるのは同期的な後始末か、
        // 非同期の後始末をタスクとして起動して、誰も待たずに任せることだけです。
        println!("{}: close()されずにドロップされました", self.name);
        let server = Arc::clone(&self.server);
        let name = self.name.clone();
        match Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    sleep(Duration::from_millis(100)).await;
                    server.open.fetch_sub(1, Ordering::SeqCst);
                    println!("{name}: Dropが起動したタスクが切断しました");
                });
            }
            // ランタイムがもうなければ、同期的にできることしかできません。
            Err(_) => {
                server.open.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}
// ANCHOR_END: connection

// ANCHOR: with_connection
/// `async with`の代わり: 接続を開いて`body`に貸し、成功しても失敗しても`close`を待ちます。
pub async fn with_connection<T, E>(
    server: &Arc<Server>,
    name: &str,
    body: impl AsyncFnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    let connection = Connection::open(server, name).await;
    let result = body(&connection).await; // ここで`?`を使うと、エラーのとき`close`を飛ばしてしまいます
    connection.close().await;
    result
}

#[tokio::main]
async fn main() {
    let server = Arc::new(Server::default());

    let result = with_connection(&server, "接続1", async |db| {
        println!("接続1: 使用中");
        db.query("SELECT 3").await
    })
    .await;
    println!(
        "結果: {result:?}、開いている接続: {}",
        server.open_connections()
    );

    let result = with_connection(&server, "接続2", async |db| {
        let rows = db.query("SELEC 3").await?; // 失敗して`Err`で抜けます
        Ok::<_, QueryError>(rows)
    })
    .await;
    println!(
        "結果: {result:?}、開いている接続: {}",
        server.open_connections()
    );

    {
        let db = Connection::open(&server, "接続3").await;
        let _ = db.query("SELECT 1").await;
    } // `close`を呼び忘れたまま、ここで`db`がドロップされます
    println!("直後に開いている接続: {}", server.open_connections());
    sleep(Duration::from_millis(200)).await;
    println!("200ミリ秒後に開いている接続: {}", server.open_connections());
}
// ANCHOR_END: with_connection

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn closed_on_the_success_path() {
        let server = Arc::new(Server::default());
        let result = with_connection(&server, "t", async |db| {
            assert_eq!(server.open_connections(), 1, "使っている間は開いている");
            db.query("SELECT 2").await
        })
        .await;
        assert_eq!(result, Ok("2件の行".to_string()));
        assert_eq!(server.open_connections(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn closed_on_the_error_path() {
        let server = Arc::new(Server::default());
        let result = with_connection(&server, "t", async |db| {
            db.query("DROP TABLE").await?;
            Ok::<_, QueryError>(())
        })
        .await;
        assert_eq!(result, Err(QueryError("DROP TABLE".into())));
        assert_eq!(server.open_connections(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_forgotten_close_is_left_to_a_task_nobody_waits_for() {
        let server = Arc::new(Server::default());
        drop(Connection::open(&server, "t").await);
        assert_eq!(
            server.open_connections(),
            1,
            "Dropの時点ではまだ閉じていない"
        );
        // 後始末のタスクは100ミリ秒かかります。同じ時刻に起きる順序は決まっていないので、少し長く待ちます。
        sleep(Duration::from_millis(200)).await;
        assert_eq!(server.open_connections(), 0, "Dropが起動したタスクが閉じた");
    }

    #[test]
    fn without_a_runtime_drop_can_only_clean_up_synchronously() -> std::io::Result<()> {
        let server = Arc::new(Server::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true) // ほかのテストと同じく、一時停止した時計で待たずに進めます
            .build()?;
        let connection = runtime.block_on(Connection::open(&server, "t"));
        drop(runtime);
        drop(connection); // ランタイムの外でドロップ
        assert_eq!(server.open_connections(), 0);
        Ok(())
    }
}

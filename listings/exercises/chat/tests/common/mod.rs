//! Helpers shared by the chat tests and the load benchmark: start the real server binary on
//! `127.0.0.1:0`, talk to it over TCP or WebSocket, and run many clients at once.
#![allow(dead_code)]

pub mod load;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::codec::{FramedRead, LinesCodec};

pub const SERVER: &str = env!("CARGO_BIN_EXE_chat-server");
pub const CLIENT: &str = env!("CARGO_BIN_EXE_chat-client");

/// How long any single expected event may take before a test fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(15);

/// The server binary, started on ephemeral loopback ports. Killed when dropped.
pub struct Server {
    child: Child,
    pub tcp: SocketAddr,
    pub http: SocketAddr,
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        // Logs are off unless asked for: `CHAT_TEST_LOG=debug cargo test -p chat`.
        let log = std::env::var("CHAT_TEST_LOG").unwrap_or_else(|_| "off".to_string());
        Self::start_with(SERVER, args, &log)
    }

    pub fn start_with(binary: &str, args: &[&str], log: &str) -> Server {
        let mut child = Command::new(binary)
            .args(["--addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std_mpsc::channel();
        // Keep reading stdout for the server's whole life, so it can never block on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let (mut tcp, mut http) = (None, None);
        while tcp.is_none() || http.is_none() {
            let line = rx
                .recv_timeout(WAIT)
                .expect("the server printed its addresses");
            if let Some(rest) = line.strip_prefix("TCP: ") {
                tcp = rest.split('（').next().and_then(|a| a.parse().ok());
            }
            if let Some(rest) = line.strip_prefix("HTTP: http://") {
                http = rest.split('/').next().and_then(|a| a.parse().ok());
            }
        }
        Server {
            child,
            tcp: tcp.unwrap(),
            http: http.unwrap(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGINT, exactly what Ctrl-C in a terminal does.
    pub fn interrupt(&self) {
        self.signal(libc::SIGINT);
    }

    /// Sends SIGTERM, what `kill` and `docker stop` send.
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({signal}) failed");
    }

    pub fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {WAIT:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many files (sockets included) the server process has open (Linux: `/proc/PID/fd`).
    pub fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .expect("the server's /proc/PID/fd")
            .count()
    }

    /// Peak resident set size of the server process (Linux: VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Raises the soft limit on open files to `needed` if it is lower (children inherit it).
pub fn ensure_open_files(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        assert_eq!(
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit),
            0,
            "getrlimit"
        );
        if limit.rlim_cur >= needed as libc::rlim_t {
            return;
        }
        assert!(
            limit.rlim_max >= needed as libc::rlim_t,
            "this test needs {needed} open files but the hard limit is {} (raise it with `ulimit -Hn`)",
            limit.rlim_max
        );
        limit.rlim_cur = needed as libc::rlim_t;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0, "setrlimit");
    }
}

/// A chat client over TCP (like `nc`) or WebSocket (like the browser page).
pub enum Client {
    Tcp {
        lines: FramedRead<OwnedReadHalf, LinesCodec>,
        writer: OwnedWriteHalf,
        seen: Vec<String>,
    },
    Ws {
        socket: Box<WebSocketStream<MaybeTlsStream<TcpStream>>>,
        seen: Vec<String>,
    },
}

impl Client {
    pub async fn tcp(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the chat server");
        Self::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> Client {
        let (reader, writer) = stream.into_split();
        Client::Tcp {
            lines: FramedRead::new(reader, LinesCodec::new()),
            writer,
            seen: Vec::new(),
        }
    }

    pub async fn ws(http: SocketAddr) -> Client {
        Self::ws_from(http, None)
            .await
            .expect("WebSocket handshake")
    }

    /// Opens `/ws` as a page from `origin` would (`None`: no `Origin` header, as non-browser
    /// clients do). On a refused handshake, returns the HTTP status.
    pub async fn ws_from(http: SocketAddr, origin: Option<&str>) -> Result<Client, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{http}/ws").into_client_request().unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("Origin", origin.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(Client::Ws {
                socket: Box::new(socket),
                seen: Vec::new(),
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(e) => panic!("WebSocket handshake: {e}"),
        }
    }

    /// Connects and reads the welcome text up to the lobby line; returns the client and its nick.
    pub async fn joined(addr: SocketAddr) -> (Client, String) {
        Self::welcomed(Self::tcp(addr).await).await
    }

    pub async fn welcomed(mut client: Client) -> (Client, String) {
        let welcome = client.next_line().await.expect("a welcome line");
        let nick = welcome
            .strip_prefix("*** チャットサーバーへようこそ！あなたは")
            .and_then(|rest| rest.strip_suffix("です。"))
            .unwrap_or_else(|| panic!("unexpected welcome {welcome:?}"))
            .to_string();
        client.expect_prefix("*** lobbyに入りました").await;
        (client, nick)
    }

    pub async fn send(&mut self, line: &str) {
        match self {
            Client::Tcp { writer, .. } => {
                writer
                    .write_all(format!("{line}\n").as_bytes())
                    .await
                    .expect("write a line");
            }
            Client::Ws { socket, .. } => socket
                .send(Message::text(line))
                .await
                .expect("send a WebSocket message"),
        }
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        match self {
            Client::Tcp { writer, .. } => writer.write_all(bytes).await.expect("write bytes"),
            Client::Ws { socket, .. } => socket
                .send(Message::binary(bytes.to_vec()))
                .await
                .expect("send a binary message"),
        }
    }

    /// The next line from the server, `None` when it closed the connection.
    /// Panics (with everything seen so far) if nothing arrives within [`WAIT`].
    pub async fn next_line(&mut self) -> Option<String> {
        let next = async {
            match self {
                Client::Tcp { lines, .. } => lines.next().await.map(|l| l.expect("a UTF-8 line")),
                Client::Ws { socket, .. } => loop {
                    match socket.next().await {
                        Some(Ok(Message::Text(text))) => break Some(text.to_string()),
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                        Some(Ok(_)) => continue,
                    }
                },
            }
        };
        match tokio::time::timeout(WAIT, next).await {
            Ok(line) => {
                if let Some(line) = &line {
                    self.seen_mut().push(line.clone());
                }
                line
            }
            Err(_) => panic!(
                "no line within {WAIT:?}; seen so far: {:#?}",
                self.seen_mut()
            ),
        }
    }

    fn seen_mut(&mut self) -> &mut Vec<String> {
        match self {
            Client::Tcp { seen, .. } | Client::Ws { seen, .. } => seen,
        }
    }

    /// Reads until a line equal to `wanted`; fails on close or timeout.
    pub async fn expect(&mut self, wanted: &str) {
        self.expect_prefix(wanted).await;
    }

    /// Reads until a line starting with `prefix` and returns it; fails on close or timeout.
    pub async fn expect_prefix(&mut self, prefix: &str) -> String {
        loop {
            match self.next_line().await {
                Some(line) if line.starts_with(prefix) => return line,
                Some(_) => continue,
                None => panic!("closed before {prefix:?}; seen: {:#?}", self.seen_mut()),
            }
        }
    }

    /// The very next line must be `wanted`.
    pub async fn expect_next(&mut self, wanted: &str) {
        let line = self.next_line().await;
        assert_eq!(
            line.as_deref(),
            Some(wanted),
            "seen: {:#?}",
            self.seen_mut()
        );
    }

    /// Reads to the end of the connection and returns the remaining lines.
    pub async fn rest_until_closed(&mut self) -> Vec<String> {
        let mut rest = Vec::new();
        while let Some(line) = self.next_line().await {
            rest.push(line);
        }
        rest
    }
}

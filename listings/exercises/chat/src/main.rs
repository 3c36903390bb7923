//! 練習問題3の解答例: TCP（`nc`）とWebSocket（ブラウザ）の両方で話せるチャットサーバー。
//!
//! 実行方法: `cargo run -p chat`（止めるときはCtrl-C）
//! 別の端末で`nc 127.0.0.1 7878`とするか、ブラウザで http://127.0.0.1:8080/ を開きます。
//! 付属のクライアントは`cargo run -p chat --bin chat-client`です。
//! LANのほかの人にも使ってもらうときは`--addr 0.0.0.0:7878 --http-addr 0.0.0.0:8080`で起動します。
//! ログの量は環境変数`RUST_LOG`で変えられます（例: `RUST_LOG=debug`）。

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::error::Error;
use std::fmt;
use std::future::ready;
use std::io::{self, IsTerminal};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::{Html, Response};
use axum::routing::get;
use clap::Parser;
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::timeout;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, FramedRead, FramedWrite, LinesCodec, LinesCodecError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};
use tracing_subscriber::EnvFilter;

// ANCHOR: config
/// TCP（nc・telnet）とWebSocket（ブラウザ）で話せるチャットサーバー
#[derive(Parser, Debug)]
#[command(version)]
struct Config {
    /// 行プロトコル（nc・telnet・chat-client）で待ち受けるアドレス
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: SocketAddr,
    /// ブラウザ用のHTTP（`/`）とWebSocket（`/ws`）で待ち受けるアドレス
    #[arg(long, default_value = "127.0.0.1:8080")]
    http_addr: SocketAddr,
    /// 同時に接続できるクライアントの数（TCPとWebSocketの合計）
    #[arg(long, default_value_t = 1000, value_parser = at_least(1))]
    max_clients: usize,
    /// 1行の最大バイト数（改行を除く）。これより長い行は捨てて、エラーを返します
    #[arg(long, default_value_t = 2048, value_parser = at_least(16))]
    max_line: usize,
    /// クライアントごとの送信キューの長さ（行）。これを超えて遅れたクライアントは切断します
    #[arg(long, default_value_t = 256, value_parser = at_least(8))]
    queue: usize,
    /// 入力がないまま、この時間が過ぎたクライアントは切断します（例: 500ms, 30s, 10m, 1h）
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    idle_timeout: Duration,
}
// ANCHOR_END: config

/// ハブの受信箱の長さ。満杯になると、各接続は空くまで読み込みを止めます。
const HUB_QUEUE: usize = 1024;
/// 別れのあいさつを書き込むのに待つ上限。相手が読まなくても、ここで諦めます。
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(2);
/// Ctrl-Cのあと、すべての接続が閉じるのを待つ上限。
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// WebSocketの1メッセージの絶対的な上限。`--max-line`を超える行はこれより手前でエラーにします。
const WS_MAX_MESSAGE: usize = 64 * 1024;
/// 最初に入る部屋。
const LOBBY: &str = "lobby";
/// 名前と部屋名の最大文字数。
const MAX_NAME_CHARS: usize = 20;

const HELP: &[&str] = &[
    "*** /nick 名前  名前を変える（1〜20文字の文字・数字・_・-）",
    "*** /join 部屋  部屋を移る（なければ作られる）",
    "*** /rooms      部屋の一覧",
    "*** /who        今の部屋にいる人",
    "*** /quit       切断する",
    "*** それ以外の行は、今の部屋にいるほかの全員に届きます",
];

// ANCHOR: input
/// クライアントから届いた1行。TCPでもWebSocketでも、ハブにはこの形で届きます。
#[derive(Debug, PartialEq)]
enum Input {
    Line(String),
    /// `--max-line`より長かった（中身は捨てた）
    TooLong,
    /// UTF-8として読めなかった（中身は捨てた）
    NotUtf8,
}

/// `LinesCodec`の2つのエラーを、接続を切らない普通の値に変えるデコーダ。
///
/// `FramedRead`はデコーダがエラーを返すとストリームを終えてしまうので、
/// 長すぎる行や壊れた行は`Ok(Some(Input::TooLong))`などとして返します。
struct LineDecoder(LinesCodec);

impl LineDecoder {
    fn new(max_line: usize) -> Self {
        // 上限を超えた行はバッファに溜めずに捨てていくので、メモリは上限の分しか使いません。
        LineDecoder(LinesCodec::new_with_max_length(max_line))
    }
}

fn lift(decoded: Result<Option<String>, LinesCodecError>) -> io::Result<Option<Input>> {
    match decoded {
        Ok(line) => Ok(line.map(Input::Line)),
        Err(LinesCodecError::MaxLineLengthExceeded) => Ok(Some(Input::TooLong)),
        Err(LinesCodecError::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
            Ok(Some(Input::NotUtf8))
        }
        Err(LinesCodecError::Io(e)) => Err(e),
    }
}

impl Decoder for LineDecoder {
    type Item = Input;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<Input>> {
        lift(self.0.decode(buf))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> io::Result<Option<Input>> {
        lift(self.0.decode_eof(buf))
    }
}
// ANCHOR_END: input

// ANCHOR: hub_types
type ClientId = u64;

/// 接続のタスクからハブ（部屋の状態を1つだけ持つタスク）への依頼。
enum Command {
    Connect {
        id: ClientId,
        outbox: mpsc::Sender<Arc<str>>,
        kick: oneshot::Sender<Farewell>,
    },
    Input {
        id: ClientId,
        input: Input,
    },
    Disconnect {
        id: ClientId,
    },
}

/// ハブから見たクライアント。
struct Client {
    nick: String,
    room: String,
    /// このクライアントへの送信キュー（長さ`--queue`）。ハブは`try_send`しか使いません。
    outbox: mpsc::Sender<Arc<str>>,
    /// ハブの都合で切断するときに、理由を接続のタスクへ伝えます。
    kick: oneshot::Sender<Farewell>,
}

/// チャットの状態すべて。1つのタスクだけが持つので、ロックは要りません。
struct Hub {
    config: Arc<Config>,
    shutdown: CancellationToken,
    clients: HashMap<ClientId, Client>,
    rooms: BTreeMap<String, BTreeSet<ClientId>>,
    /// 使われている名前（小文字にしたもの）
    nicks: HashSet<String>,
    /// 送信キューがあふれたクライアント。コマンドを1つ処理するたびに切断します。
    lagging: Vec<ClientId>,
}
// ANCHOR_END: hub_types

// ANCHOR: farewell
/// 接続を閉じる前にクライアントへ送る最後の1行の理由。
#[derive(Debug, PartialEq)]
enum Farewell {
    Quit,
    Idle(Duration),
    TooSlow(usize),
    Shutdown,
}

impl fmt::Display for Farewell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Farewell::Quit => write!(f, "*** さようなら"),
            Farewell::Idle(d) => write!(
                f,
                "!!! {}のあいだ入力がなかったので切断します",
                japanese(*d)
            ),
            Farewell::TooSlow(n) => {
                write!(
                    f,
                    "!!! 受信が追いつかないので切断します（未送信が{n}行を超えました）"
                )
            }
            Farewell::Shutdown => write!(f, "*** サーバーを停止します。さようなら"),
        }
    }
}
// ANCHOR_END: farewell

// ANCHOR: hub_run
impl Hub {
    /// すべての接続が`mpsc::Sender`を手放すまで、依頼を1つずつ順に処理します。
    /// 処理の中では`.await`しない（誰も待たない）ので、1つの遅い接続にハブが止められることはありません。
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(command) = commands.recv().await {
            match command {
                Command::Connect { id, outbox, kick } => self.connect(id, outbox, kick),
                Command::Input { id, input } => self.input(id, input),
                Command::Disconnect { id } => self.remove(id, None),
            }
            self.disconnect_lagging();
        }
    }
}
// ANCHOR_END: hub_run

impl Hub {
    fn new(config: Arc<Config>, shutdown: CancellationToken) -> Self {
        Hub {
            config,
            shutdown,
            clients: HashMap::new(),
            rooms: BTreeMap::new(),
            nicks: HashSet::new(),
            lagging: Vec::new(),
        }
    }

    fn connect(
        &mut self,
        id: ClientId,
        outbox: mpsc::Sender<Arc<str>>,
        kick: oneshot::Sender<Farewell>,
    ) {
        // 利用者は`guest-`で始まる名前を選べないので、この名前は必ず空いています。
        let nick = format!("guest-{id}");
        self.nicks.insert(nick.clone());
        let client = Client {
            nick: nick.clone(),
            room: LOBBY.to_string(),
            outbox,
            kick,
        };
        self.clients.insert(id, client);
        info!(id, %nick, clients = self.clients.len(), "参加しました");
        self.send(
            id,
            format!("*** チャットサーバーへようこそ！あなたは{nick}です。"),
        );
        self.send(
            id,
            "*** 名前は/nick、部屋は/joinで変えられます。コマンドの一覧は/helpです。",
        );
        self.enter(id, LOBBY.to_string());
    }

    // ANCHOR: deliver
    /// 1人に1行を送ります。キューが満杯なら待たずに「遅れている」と記録します。
    fn send(&mut self, id: ClientId, line: impl Into<Arc<str>>) {
        if let Some(client) = self.clients.get(&id) {
            offer(client, id, line.into(), &mut self.lagging);
        }
    }

    /// 部屋の全員（`except`を除く）に同じ1行を送ります。
    /// 行は`Arc<str>`なので、1,000人に送っても文字列のコピーは作りません。
    fn broadcast(&mut self, room: &str, except: Option<ClientId>, line: impl Into<Arc<str>>) {
        let line = line.into();
        let Some(members) = self.rooms.get(room) else {
            return;
        };
        for &member in members.iter().filter(|&&m| Some(m) != except) {
            if let Some(client) = self.clients.get(&member) {
                offer(client, member, Arc::clone(&line), &mut self.lagging);
            }
        }
    }

    /// 送信キューがあふれたクライアントを切断します。切断の知らせで
    /// さらに誰かのキューがあふれることもあるので、いなくなるまで繰り返します。
    fn disconnect_lagging(&mut self) {
        while let Some(id) = self.lagging.pop() {
            if let Some(client) = self.clients.get(&id) {
                warn!(id, nick = %client.nick, queue = self.config.queue, "受信が遅いので切断します");
                self.remove(id, Some(Farewell::TooSlow(self.config.queue)));
            }
        }
    }
    // ANCHOR_END: deliver

    /// クライアントを状態から消し、部屋のほかの人に知らせます。
    /// `reason`があれば、接続のタスクにそれを伝えて切断させます。
    fn remove(&mut self, id: ClientId, reason: Option<Farewell>) {
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        self.nicks.remove(&client.nick.to_lowercase());
        self.leave_room(id, &client.room);
        info!(id, nick = %client.nick, clients = self.clients.len(), "退出しました");
        if !self.shutdown.is_cancelled() {
            let why = if reason.is_some() {
                "が切断されました（受信が遅れすぎたため）"
            } else {
                "が退出しました"
            };
            self.broadcast(&client.room, None, format!("*** {}{why}", client.nick));
        }
        if let Some(reason) = reason {
            // 接続のタスクがもう終わっていれば受け取り手がいませんが、それで構いません。
            let _ = client.kick.send(reason);
        }
        // ここで`client.outbox`がドロップされ、接続のタスクの受信側は残りを読んだら終わります。
    }

    fn enter(&mut self, id: ClientId, room: String) {
        let members = self.rooms.entry(room.clone()).or_default();
        members.insert(id);
        let count = members.len();
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        client.room = room.clone();
        let nick = client.nick.clone();
        self.broadcast(&room, Some(id), format!("*** {nick}が{room}に入りました"));
        self.send(id, format!("*** {room}に入りました（{count}人）"));
    }

    fn leave_room(&mut self, id: ClientId, room: &str) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(&id);
            if members.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    // ANCHOR: commands
    fn input(&mut self, id: ClientId, input: Input) {
        let line = match input {
            Input::Line(line) => line,
            Input::TooLong => {
                let max = self.config.max_line;
                return self.send(
                    id,
                    format!("!!! 行が長すぎます（最大{max}バイト）。この行は捨てました"),
                );
            }
            Input::NotUtf8 => return self.send(id, "!!! UTF-8として読めない行は捨てました"),
        };
        // 端末の制御シーケンス（ESCなど）をほかの人の画面に送り込ませないためです。
        if line.chars().any(char::is_control) {
            return self.send(id, "!!! 制御文字を含む行は送れません");
        }
        let line = line.trim();
        match line
            .split_once(' ')
            .map_or((line, ""), |(cmd, arg)| (cmd, arg.trim()))
        {
            ("", _) => {}
            ("/nick", name) => self.rename(id, name),
            ("/join", room) => self.join(id, room),
            ("/rooms", _) => self.list_rooms(id),
            ("/who", _) => self.who(id),
            ("/help", _) => HELP.iter().for_each(|&line| self.send(id, line)),
            (cmd, _) if cmd.starts_with('/') => self.send(
                id,
                format!("!!! 知らないコマンドです: {cmd}（/helpで一覧を表示します）"),
            ),
            _ => self.say(id, line),
        }
    }

    fn say(&mut self, id: ClientId, text: &str) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let room = client.room.clone();
        let line = format!("[{room}] {}: {text}", client.nick);
        self.broadcast(&room, Some(id), line);
    }
    // ANCHOR_END: commands

    // ANCHOR: rename
    fn rename(&mut self, id: ClientId, name: &str) {
        if let Err(problem) = check_name(name) {
            return self.send(id, format!("!!! 使えない名前です: {problem}"));
        }
        if name.to_lowercase().starts_with("guest-") {
            return self.send(id, "!!! guest-で始まる名前は予約されています");
        }
        // 大文字と小文字だけが違う名前は、同じ名前として扱います。
        if !self.nicks.insert(name.to_lowercase()) {
            return self.send(id, format!("!!! {name}はすでに使われています"));
        }
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut client.nick, name.to_string());
        let room = client.room.clone();
        self.nicks.remove(&old.to_lowercase());
        self.send(id, format!("*** 名前を{name}に変えました"));
        self.broadcast(
            &room,
            Some(id),
            format!("*** {old}が{name}に名前を変えました"),
        );
    }
    // ANCHOR_END: rename

    fn join(&mut self, id: ClientId, room: &str) {
        if let Err(problem) = check_name(room) {
            return self.send(id, format!("!!! 使えない部屋名です: {problem}"));
        }
        let room = room.to_lowercase();
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if client.room == room {
            return self.send(id, format!("!!! すでに{room}にいます"));
        }
        let (old, nick) = (client.room.clone(), client.nick.clone());
        self.leave_room(id, &old);
        self.broadcast(&old, None, format!("*** {nick}が{old}から出ました"));
        self.enter(id, room);
    }

    fn list_rooms(&mut self, id: ClientId) {
        let rooms: Vec<String> = self
            .rooms
            .iter()
            .map(|(name, members)| format!("{name}（{}人）", members.len()))
            .collect();
        self.send(id, format!("*** 部屋: {}", rooms.join("、")));
    }

    fn who(&mut self, id: ClientId) {
        let Some(room) = self.clients.get(&id).map(|c| c.room.clone()) else {
            return;
        };
        let mut nicks: Vec<&str> = self.rooms[&room]
            .iter()
            .map(|m| self.clients[m].nick.as_str())
            .collect();
        nicks.sort_unstable();
        let line = format!(
            "*** {room}にいる人（{}人）: {}",
            nicks.len(),
            nicks.join("、")
        );
        self.send(id, line);
    }
}

// ANCHOR: offer
/// `try_send`は待ちません。満杯なら、そのクライアントを「遅れている」と記録するだけです。
fn offer(client: &Client, id: ClientId, line: Arc<str>, lagging: &mut Vec<ClientId>) {
    match client.outbox.try_send(line) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => lagging.push(id),
        // 接続のタスクはもう終わっていて、`Disconnect`がこちらへ向かっているところです。
        Err(TrySendError::Closed(_)) => {}
    }
}
// ANCHOR_END: offer

// ANCHOR: check_name
/// 名前と部屋名の規則: 1〜20文字で、文字・数字・`_`・`-`だけ（日本語の名前も使えます）。
fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(format!(
            "1〜{MAX_NAME_CHARS}文字にしてください（{chars}文字でした）"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_alphanumeric() || c == '_' || c == '-'))
    {
        return Err(format!("「{c}」は使えません（文字・数字・_・-だけです）"));
    }
    Ok(())
}
// ANCHOR_END: check_name

// ANCHOR: chat
/// 接続を受け付ける側が共有するもの。`Clone`は安価です（中身はすべて参照カウント付き）。
#[derive(Clone)]
struct Chat {
    config: Arc<Config>,
    hub: mpsc::Sender<Command>,
    /// 空いている席の数。`--max-clients`個の許可証を、接続が生きているあいだ1つずつ持ちます。
    slots: Arc<Semaphore>,
    next_id: Arc<AtomicU64>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}
// ANCHOR_END: chat

// ANCHOR: connection
/// 1つの接続を最後まで面倒を見ます。TCPとWebSocketのどちらもここを通ります。
async fn connection<St, Si>(
    chat: Chat,
    peer: SocketAddr,
    transport: &'static str,
    lines: St,
    mut output: Si,
) where
    St: Stream<Item = io::Result<Input>> + Unpin,
    Si: Sink<Arc<str>> + Unpin,
    Si::Error: fmt::Display,
{
    // 許可証はこの関数の終わりでドロップされ、席が1つ空きます（RAII）。
    let Ok(_slot) = Arc::clone(&chat.slots).try_acquire_owned() else {
        info!(%peer, transport, "満員なので断りました");
        let line = format!(
            "!!! 満員です（最大{}人）。しばらくしてから接続してください",
            chat.config.max_clients
        );
        let _ = timeout(FAREWELL_TIMEOUT, async {
            output.send(line.into()).await?;
            output.close().await
        })
        .await;
        return;
    };
    let id = chat.next_id.fetch_add(1, Ordering::Relaxed);
    let (outbox, mut inbox) = mpsc::channel(chat.config.queue);
    let (kick, mut kicked) = oneshot::channel();
    if chat
        .hub
        .send(Command::Connect { id, outbox, kick })
        .await
        .is_err()
    {
        return; // ハブはもう止まっている
    }
    debug!(id, %peer, transport, "接続しました");

    // 読む・書く・追い出される・停止する、のうち最初に起きたことで接続を終えます。
    let farewell = tokio::select! {
        farewell = read_lines(&chat, id, lines) => farewell,
        () = write_lines(&mut inbox, &mut output) => kicked.try_recv().ok(),
        Ok(farewell) = &mut kicked => Some(farewell),
        () = chat.shutdown.cancelled() => Some(Farewell::Shutdown),
    };
    // `select!`が終わると残りのFutureはドロップされ、`output`をまた使えるようになります。
    let _ = chat.hub.send(Command::Disconnect { id }).await;
    if let Some(farewell) = farewell {
        debug!(id, %farewell, "切断します");
        // 相手が読んでくれなくても、`FAREWELL_TIMEOUT`で諦めます。
        let _ = timeout(FAREWELL_TIMEOUT, async {
            // 遅すぎて追い出すときは、溜まった行は捨てて理由だけを送ります。
            if !matches!(farewell, Farewell::TooSlow(_)) {
                while let Ok(line) = inbox.try_recv() {
                    output.feed(line).await?;
                }
            }
            output.feed(farewell.to_string().into()).await?;
            output.close().await
        })
        .await;
    }
}
// ANCHOR_END: connection

// ANCHOR: read_write
/// クライアントの行をハブへ渡します。`Some`を返したら、その理由を伝えて切断します。
async fn read_lines<St>(chat: &Chat, id: ClientId, mut lines: St) -> Option<Farewell>
where
    St: Stream<Item = io::Result<Input>> + Unpin,
{
    let idle = chat.config.idle_timeout;
    loop {
        let input = match timeout(idle, lines.next()).await {
            Err(_elapsed) => return Some(Farewell::Idle(idle)),
            Ok(None) => return None, // 相手が閉じた
            Ok(Some(Err(e))) => {
                debug!(id, error = %e, "読み込みに失敗しました");
                return None;
            }
            Ok(Some(Ok(input))) => input,
        };
        if matches!(&input, Input::Line(line) if line.trim() == "/quit") {
            return Some(Farewell::Quit);
        }
        // ハブの受信箱が満杯なら、ここで待ちます。そのあいだこの接続からは読まないので、
        // TCPのフロー制御で送り手のほうが減速します（背圧）。
        if chat.hub.send(Command::Input { id, input }).await.is_err() {
            return None;
        }
    }
}

/// 送信キューの行をクライアントへ書きます。キューが閉じるか、書けなくなったら終わります。
async fn write_lines<Si>(inbox: &mut mpsc::Receiver<Arc<str>>, output: &mut Si)
where
    Si: Sink<Arc<str>> + Unpin,
    Si::Error: fmt::Display,
{
    while let Some(line) = inbox.recv().await {
        // 溜まっている分をまとめて書いてから1回だけflushするので、システムコールが減ります。
        let mut result = output.feed(line).await;
        while let (Ok(()), Ok(line)) = (&result, inbox.try_recv()) {
            result = output.feed(line).await;
        }
        if let Err(e) = result.and(output.flush().await) {
            debug!(error = %e, "書き込みに失敗しました");
            return;
        }
    }
}
// ANCHOR_END: read_write

// ANCHOR: tcp
async fn accept_tcp(chat: Chat, listener: TcpListener) {
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
        let chat = chat.clone();
        // ここでタスクを起動するので、次の接続をすぐ受け付けられます。
        chat.tracker
            .clone()
            .spawn(tcp_connection(chat, stream, peer));
    }
}

async fn tcp_connection(chat: Chat, stream: TcpStream, peer: SocketAddr) {
    // チャットの行は小さいので、Nagleのアルゴリズムで待たせずにすぐ送ります。
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let lines = FramedRead::new(reader, LineDecoder::new(chat.config.max_line));
    let output = FramedWrite::new(writer, LinesCodec::new());
    connection(chat, peer, "tcp", lines, output).await;
}
// ANCHOR_END: tcp

// ANCHOR: websocket
async fn websocket(
    upgrade: WebSocketUpgrade,
    State(chat): State<Chat>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    upgrade
        .max_message_size(WS_MAX_MESSAGE)
        .on_upgrade(move |socket| {
            let max_line = chat.config.max_line;
            let (sink, stream) = socket.split();
            // WebSocketの1メッセージを、TCPの1行と同じ`Input`に変えます。
            let lines = stream.filter_map(move |message| ready(ws_input(message, max_line)));
            let output =
                sink.with(|line: Arc<str>| ready(Ok::<_, axum::Error>(Message::text(&*line))));
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
        // PingにはPongが自動で返り、Closeのあとはストリームが終わります。
        Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_)) => return None,
        Err(e) => return Some(Err(io::Error::other(e.to_string()))),
    };
    Some(Ok(if text.len() > max_line {
        Input::TooLong
    } else {
        Input::Line(text.to_string())
    }))
}
// ANCHOR_END: websocket

async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

// ANCHOR: main
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();
    let config = Arc::new(Config::parse());
    let tcp = TcpListener::bind(config.addr)
        .await
        .map_err(|e| format!("{}で待ち受けられません: {e}", config.addr))?;
    let http = TcpListener::bind(config.http_addr)
        .await
        .map_err(|e| format!("{}で待ち受けられません: {e}", config.http_addr))?;
    let (tcp_addr, http_addr) = (tcp.local_addr()?, http.local_addr()?);

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let (hub, commands) = mpsc::channel(HUB_QUEUE);
    tokio::spawn(Hub::new(Arc::clone(&config), shutdown.clone()).run(commands));
    let chat = Chat {
        slots: Arc::new(Semaphore::new(config.max_clients)),
        config,
        hub,
        next_id: Arc::new(AtomicU64::new(1)),
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
    };

    tracker.spawn(accept_tcp(chat.clone(), tcp));
    let app = Router::new()
        .route("/", get(index))
        .route("/ws", get(websocket))
        .with_state(chat);
    let server = axum::serve(
        http,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    tracker.spawn(async move {
        if let Err(e) = server.await {
            warn!(error = %e, "HTTPサーバーが止まりました");
        }
    });

    println!(
        "TCP: {tcp_addr}（nc {} {}で接続できます）",
        tcp_addr.ip(),
        tcp_addr.port()
    );
    println!("HTTP: http://{http_addr}/（ブラウザで開きます）");
    info!("起動しました。Ctrl-Cで停止します");

    tokio::signal::ctrl_c().await?;
    info!("Ctrl-Cを受け取りました。全員に知らせて停止します");
    // すべての接続のタスクの`select!`で`cancelled()`が完了し、別れのあいさつを送って閉じます。
    shutdown.cancel();
    tracker.close();
    if timeout(SHUTDOWN_TIMEOUT, tracker.wait()).await.is_err() {
        warn!("時間内に閉じなかった接続がありました");
    }
    info!("停止しました");
    Ok(())
}
// ANCHOR_END: main

/// `--max-clients`などの下限を確かめる`clap`の値パーサ。
fn at_least(min: u64) -> impl clap::builder::TypedValueParser<Value = usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(min..)
}

/// `500ms`・`30s`・`10m`・`1h`の形の時間を読みます（単位のない数は秒）。
fn parse_duration(text: &str) -> Result<Duration, String> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("数字で始めてください（例: 30s、10m）: {text:?}"))?;
    let seconds = |factor: u64| {
        n.checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or("長すぎます".to_string())
    };
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => seconds(60)?,
        "h" => seconds(3600)?,
        _ => return Err(format!("単位はms、s、m、hのどれかです: {text:?}")),
    };
    if duration.is_zero() {
        return Err("0より長くしてください".to_string());
    }
    Ok(duration)
}

/// 時間を「30分」「5秒」「300ミリ秒」のように書きます。
fn japanese(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if ms.is_multiple_of(3_600_000) => format!("{}時間", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}分", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}秒", ms / 1000),
        _ => format!("{ms}ミリ秒"),
    }
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

    fn config(queue: usize) -> Arc<Config> {
        Arc::new(Config::parse_from([
            "chat-server",
            "--queue",
            &queue.to_string(),
        ]))
    }

    /// ソケットなしでハブに直接つないだクライアント。
    struct TestClient {
        id: ClientId,
        inbox: mpsc::Receiver<Arc<str>>,
        kicked: oneshot::Receiver<Farewell>,
    }

    impl TestClient {
        fn connect(hub: &mut Hub, id: ClientId, queue: usize) -> Self {
            let (outbox, inbox) = mpsc::channel(queue);
            let (kick, kicked) = oneshot::channel();
            hub.connect(id, outbox, kick);
            let mut client = TestClient { id, inbox, kicked };
            client.drain();
            client
        }

        fn say(&self, hub: &mut Hub, line: &str) {
            hub.input(self.id, Input::Line(line.to_string()));
            hub.disconnect_lagging();
        }

        fn drain(&mut self) -> Vec<String> {
            std::iter::from_fn(|| self.inbox.try_recv().ok())
                .map(|line| line.to_string())
                .collect()
        }
    }

    #[test]
    fn decoder_turns_bad_lines_into_values_and_keeps_going() {
        let mut decoder = LineDecoder::new(16);
        let mut buf = BytesMut::from(&b"hello\r\n"[..]);
        buf.extend_from_slice(&[b'x'; 40]);
        buf.extend_from_slice(b"\n\xff\xfe\nafter\n");
        let mut got = Vec::new();
        while let Some(input) = decoder.decode(&mut buf).unwrap() {
            got.push(input);
        }
        let expected = [
            Input::Line("hello".into()),
            Input::TooLong,
            Input::NotUtf8,
            Input::Line("after".into()),
        ];
        assert_eq!(got, expected);
        assert!(buf.is_empty());
    }

    #[test]
    fn names_follow_the_rules() {
        assert!(check_name("alice").is_ok());
        assert!(check_name("たろう_2").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(&"a".repeat(21)).is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("a\u{1b}").is_err());
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("m").is_err());
        assert_eq!(japanese(Duration::from_secs(1800)), "30分");
        assert_eq!(japanese(Duration::from_millis(300)), "300ミリ秒");
    }

    #[test]
    fn a_full_queue_disconnects_only_the_slow_client() {
        let queue = 8;
        let mut hub = Hub::new(config(queue), CancellationToken::new());
        let mut fast = TestClient::connect(&mut hub, 1, queue);
        let mut slow = TestClient::connect(&mut hub, 2, queue);
        let talker = TestClient::connect(&mut hub, 3, queue);
        fast.drain();
        slow.drain();
        let mut seen = Vec::new();
        for n in 0..=queue {
            talker.say(&mut hub, &format!("message {n}"));
            // fastは毎回読むので遅れません。slowは一度も読みません。
            seen.extend(fast.drain());
        }
        assert_eq!(slow.kicked.try_recv(), Ok(Farewell::TooSlow(queue)));
        assert!(!hub.clients.contains_key(&2));
        let mut expected: Vec<String> = (0..=queue)
            .map(|n| format!("[lobby] guest-3: message {n}"))
            .collect();
        expected.push("*** guest-2が切断されました（受信が遅れすぎたため）".to_string());
        assert_eq!(seen, expected);
        // slowのキューには、あふれる前の行だけが残っています。
        assert_eq!(slow.drain().len(), queue);
    }

    #[test]
    fn nick_rules_are_enforced_by_the_hub() {
        let mut hub = Hub::new(config(64), CancellationToken::new());
        let mut a = TestClient::connect(&mut hub, 1, 64);
        let mut b = TestClient::connect(&mut hub, 2, 64);
        assert_eq!(a.drain(), ["*** guest-2がlobbyに入りました"]);
        a.say(&mut hub, "/nick Alice");
        assert_eq!(a.drain(), ["*** 名前をAliceに変えました"]);
        assert_eq!(b.drain(), ["*** guest-1がAliceに名前を変えました"]);
        b.say(&mut hub, "/nick alice");
        assert_eq!(b.drain(), ["!!! aliceはすでに使われています"]);
        b.say(&mut hub, "/nick guest-9");
        assert_eq!(b.drain(), ["!!! guest-で始まる名前は予約されています"]);
        b.say(&mut hub, "/nick a b");
        assert_eq!(
            b.drain(),
            ["!!! 使えない名前です: 「 」は使えません（文字・数字・_・-だけです）"]
        );
        // 名前を変えると、古い名前は空きます。
        a.say(&mut hub, "/nick alice2");
        b.say(&mut hub, "/nick Alice");
        assert_eq!(
            b.drain(),
            [
                "*** Aliceがalice2に名前を変えました",
                "*** 名前をAliceに変えました"
            ]
        );
    }
}

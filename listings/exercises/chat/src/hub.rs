//! ハブ: 部屋と名前の状態を1つのタスクだけで持ち、行を各クライアントの送信キューへ配ります。

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::protocol::{Farewell, HELP, Input, LOBBY, check_name, check_text};

// ANCHOR: send_queue
/// 送信キューの入れる側（ハブが持つ）。中身の合計バイト数を数えていて、
/// `--sendq`を超える行は入れずに断ります。
pub struct Outbox {
    lines: mpsc::UnboundedSender<Arc<str>>,
    queued: Arc<AtomicUsize>,
}

/// 送信キューの取り出す側（接続のタスクが持つ）。
pub struct Inbox {
    lines: mpsc::UnboundedReceiver<Arc<str>>,
    queued: Arc<AtomicUsize>,
}

/// キューの中での1行の大きさ（改行の1バイトを含む）。
fn size(line: &str) -> usize {
    line.len() + 1
}

/// 上限をバイトで数える送信キューを作ります。行の数には上限がありません。
pub fn send_queue() -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let outbox = Outbox {
        lines: tx,
        queued: Arc::clone(&queued),
    };
    (outbox, Inbox { lines: rx, queued })
}

/// `Outbox::offer`が行を入れられなかった理由。
#[derive(Debug, PartialEq)]
pub enum Refused {
    /// 入れると上限を超える
    Full,
    /// 受け取る側がもういない
    Closed,
}

impl Outbox {
    /// 待たずに1行を入れます。入れると合計が`cap`バイトを超えるなら断ります。
    pub fn offer(&self, line: Arc<str>, cap: usize) -> Result<(), Refused> {
        let size = size(&line);
        // 増やすのはハブだけ、減らすのは接続のタスクだけなので、読んでから足すあいだに
        // 合計が増えることはありません（減るのは構いません）。
        if self.queued.load(Ordering::Relaxed) + size > cap {
            return Err(Refused::Full);
        }
        self.queued.fetch_add(size, Ordering::Relaxed);
        self.lines.send(line).map_err(|_| Refused::Closed)
    }
}

impl Inbox {
    /// 次の1行。取り出した行は、もうキューの大きさに数えません。
    pub async fn recv(&mut self) -> Option<Arc<str>> {
        let line = self.lines.recv().await?;
        self.queued.fetch_sub(size(&line), Ordering::Relaxed);
        Some(line)
    }

    /// 待たずに次の1行。
    pub fn try_recv(&mut self) -> Option<Arc<str>> {
        let line = self.lines.try_recv().ok()?;
        self.queued.fetch_sub(size(&line), Ordering::Relaxed);
        Some(line)
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// キューにある行の合計バイト数。
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}
// ANCHOR_END: send_queue

// ANCHOR: hub_types
pub type ClientId = u64;

/// 接続のタスクからハブ（部屋の状態を1つだけ持つタスク）への依頼。
pub enum Command {
    Connect {
        id: ClientId,
        outbox: Outbox,
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
    /// このクライアントへの送信キュー（上限`--sendq`バイト）。ハブは待たない`offer`しか使いません。
    outbox: Outbox,
    /// ハブの都合で切断するときに、理由を接続のタスクへ伝えます。
    kick: oneshot::Sender<Farewell>,
}

/// チャットの状態すべて。1つのタスクだけが持つので、ロックは要りません。
pub struct Hub {
    config: Arc<Config>,
    shutdown: CancellationToken,
    clients: HashMap<ClientId, Client>,
    rooms: BTreeMap<String, BTreeSet<ClientId>>,
    /// 使われている名前（小文字にしたもの）
    nicks: HashSet<String>,
    /// 送信キューがあふれたクライアント。依頼を1つ処理するたびに切断します。
    lagging: Vec<ClientId>,
}
// ANCHOR_END: hub_types

// ANCHOR: hub_run
impl Hub {
    /// すべての接続が`mpsc::Sender`を手放すまで、依頼を1つずつ順に処理します。
    /// 処理の中では`.await`しない（誰も待たない）ので、1つの遅い接続にハブが止められることはありません。
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
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
    pub fn new(config: Arc<Config>, shutdown: CancellationToken) -> Self {
        Hub {
            config,
            shutdown,
            clients: HashMap::new(),
            rooms: BTreeMap::new(),
            nicks: HashSet::new(),
            lagging: Vec::new(),
        }
    }

    fn connect(&mut self, id: ClientId, outbox: Outbox, kick: oneshot::Sender<Farewell>) {
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
    /// 1人に1行を送ります。キューがあふれるなら待たずに「遅れている」と記録します。
    fn send(&mut self, id: ClientId, line: impl Into<Arc<str>>) {
        if let Some(client) = self.clients.get(&id) {
            offer(client, id, line.into(), &self.config, &mut self.lagging);
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
                offer(
                    client,
                    member,
                    Arc::clone(&line),
                    &self.config,
                    &mut self.lagging,
                );
            }
        }
    }

    /// 入室・退室・名前の変更のお知らせ。`--announce-max`人を超える部屋には配りません。
    /// 1,000人が次々に入ってくると、全員に知らせるだけで約50万行になるからです。
    fn announce(&mut self, room: &str, except: Option<ClientId>, line: String) {
        let members = self.rooms.get(room).map_or(0, BTreeSet::len);
        if members <= self.config.announce_max {
            self.broadcast(room, except, line);
        }
    }

    /// 送信キューがあふれたクライアントを切断します。切断の知らせで
    /// さらに誰かのキューがあふれることもあるので、いなくなるまで繰り返します。
    fn disconnect_lagging(&mut self) {
        while let Some(id) = self.lagging.pop() {
            if let Some(client) = self.clients.get(&id) {
                let sendq = self.config.sendq;
                warn!(id, nick = %client.nick, %sendq, "受信が遅いので切断します");
                self.remove(id, Some(Farewell::TooSlow(sendq)));
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
        // 抜ける前の人数で、お知らせを配るかどうかを決めます。
        let was_announced = self
            .rooms
            .get(&client.room)
            .is_some_and(|m| m.len() <= self.config.announce_max);
        self.leave_room(id, &client.room);
        info!(id, nick = %client.nick, clients = self.clients.len(), "退出しました");
        if !self.shutdown.is_cancelled() && was_announced {
            let why = match reason {
                Some(Farewell::TooSlow(_)) => "が切断されました（受信が遅れすぎたため）",
                _ => "が退出しました",
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
        self.announce(&room, Some(id), format!("*** {nick}が{room}に入りました"));
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
            Input::Pong => return,
        };
        // 端末の制御シーケンス（ESCなど）や、表示の向きを変える文字をほかの人の画面に送り込ませないためです。
        if let Err(problem) = check_text(&line) {
            return self.send(id, problem);
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
        self.announce(
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
        // 出る前の人数で決めるために、先に知らせてから部屋を出ます（本人には届けません）。
        self.announce(&old, Some(id), format!("*** {nick}が{old}から出ました"));
        self.leave_room(id, &old);
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
/// `offer`は待ちません。入りきらなければ、そのクライアントを「遅れている」と記録するだけです。
fn offer(
    client: &Client,
    id: ClientId,
    line: Arc<str>,
    config: &Config,
    lagging: &mut Vec<ClientId>,
) {
    let cap = usize::try_from(config.sendq.as_u64()).unwrap_or(usize::MAX);
    match client.outbox.offer(line, cap) {
        Ok(()) => {}
        Err(Refused::Full) => lagging.push(id),
        // 接続のタスクはもう終わっていて、`Disconnect`がこちらへ向かっているところです。
        Err(Refused::Closed) => {}
    }
}
// ANCHOR_END: offer

#[cfg(test)]
mod tests {
    use super::*;
    use bytesize::ByteSize;
    use clap::Parser;

    fn config(args: &[&str]) -> Arc<Config> {
        Arc::new(Config::parse_from(
            std::iter::once("chat-server").chain(args.iter().copied()),
        ))
    }

    /// ソケットなしでハブに直接つないだクライアント。
    struct TestClient {
        id: ClientId,
        inbox: Inbox,
        kicked: oneshot::Receiver<Farewell>,
    }

    impl TestClient {
        fn connect(hub: &mut Hub, id: ClientId) -> Self {
            let (outbox, inbox) = send_queue();
            let (kick, kicked) = oneshot::channel();
            hub.connect(id, outbox, kick);
            hub.disconnect_lagging();
            let mut client = TestClient { id, inbox, kicked };
            client.drain();
            client
        }

        fn say(&self, hub: &mut Hub, line: &str) {
            hub.input(self.id, Input::Line(line.to_string()));
            hub.disconnect_lagging();
        }

        fn drain(&mut self) -> Vec<String> {
            std::iter::from_fn(|| self.inbox.try_recv())
                .map(|line| line.to_string())
                .collect()
        }
    }

    #[test]
    fn the_send_queue_counts_bytes() {
        let (outbox, mut inbox) = send_queue();
        // 1行の大きさは、改行の1バイトを足して数えます。
        assert_eq!(outbox.offer("abc".into(), 10), Ok(()));
        assert_eq!(inbox.queued(), 4);
        assert_eq!(outbox.offer("defg".into(), 10), Ok(()));
        assert_eq!(outbox.offer("h".into(), 10), Err(Refused::Full));
        assert_eq!(inbox.try_recv().as_deref(), Some("abc"));
        assert_eq!(outbox.offer("h".into(), 10), Ok(()));
        assert_eq!(inbox.queued(), 7);
        drop(inbox);
        assert_eq!(outbox.offer("i".into(), 100), Err(Refused::Closed));
    }

    #[test]
    fn a_full_queue_disconnects_only_the_slow_client() {
        // 4KiBのキューに、本文100バイトの行（1行で約120バイト）を送り続けます。
        let mut hub = Hub::new(config(&["--sendq", "4KiB"]), CancellationToken::new());
        let mut fast = TestClient::connect(&mut hub, 1);
        let mut slow = TestClient::connect(&mut hub, 2);
        let talker = TestClient::connect(&mut hub, 3);
        fast.drain();
        slow.drain();
        let padding = "x".repeat(100);
        let mut seen = Vec::new();
        let mut sent = 0;
        while hub.clients.contains_key(&2) {
            assert!(sent < 100, "the slow client was never disconnected");
            talker.say(&mut hub, &format!("{sent} {padding}"));
            sent += 1;
            // fastは毎回読むので遅れません。slowは一度も読みません。
            seen.extend(fast.drain());
        }
        assert_eq!(
            slow.kicked.try_recv(),
            Ok(Farewell::TooSlow(ByteSize::kib(4)))
        );
        let mut expected: Vec<String> = (0..sent)
            .map(|n| format!("[lobby] guest-3: {n} {padding}"))
            .collect();
        expected.push("*** guest-2が切断されました（受信が遅れすぎたため）".to_string());
        assert_eq!(seen, expected);
        // slowのキューには、あふれる前の行だけが残っていて、合計は4KiBを超えません。
        let kept = slow.drain();
        assert_eq!(kept.len(), sent - 1);
        assert!(kept.iter().map(|l| l.len() + 1).sum::<usize>() <= 4096);
        assert!(kept.iter().map(|l| l.len() + 1).sum::<usize>() + 120 > 4096);
    }

    #[test]
    fn joins_to_a_big_room_are_not_announced_to_everyone() {
        let mut hub = Hub::new(config(&["--announce-max", "3"]), CancellationToken::new());
        let mut first = TestClient::connect(&mut hub, 1);
        let mut others: Vec<TestClient> = (2..=5)
            .map(|id| TestClient::connect(&mut hub, id))
            .collect();
        // 3人目までの入室は知らされ、4人目からは知らされません。
        assert_eq!(
            first.drain(),
            [
                "*** guest-2がlobbyに入りました",
                "*** guest-3がlobbyに入りました"
            ]
        );
        // 入った本人には、いつも人数が届きます。
        let last = others.last_mut().unwrap();
        last.say(&mut hub, "/who");
        assert_eq!(
            last.drain(),
            ["*** lobbyにいる人（5人）: guest-1、guest-2、guest-3、guest-4、guest-5"]
        );
        // 小さな部屋では、今までどおり知らされます。
        others.iter_mut().for_each(|c| {
            c.drain();
        });
        others[0].say(&mut hub, "/join small");
        others[1].say(&mut hub, "/join small");
        assert_eq!(
            others[0].drain(),
            [
                "*** smallに入りました（1人）",
                "*** guest-3がsmallに入りました"
            ]
        );
        // lobbyの人数が5人・4人のあいだに出た2人は知らされず、3人になってからは知らされます。
        assert!(first.drain().is_empty());
        hub.remove(5, None);
        assert_eq!(first.drain(), ["*** guest-5が退出しました"]);
    }

    #[test]
    fn a_burst_of_two_thousand_joins_kicks_no_one_with_the_defaults() {
        // 誰も読まないまま2,000人が入っても、既定の1MiBの送信キューはあふれません。
        let mut hub = Hub::new(config(&[]), CancellationToken::new());
        let clients: Vec<TestClient> = (1..=2000)
            .map(|id| {
                let (outbox, inbox) = send_queue();
                let (kick, kicked) = oneshot::channel();
                hub.connect(id, outbox, kick);
                hub.disconnect_lagging();
                TestClient { id, inbox, kicked }
            })
            .collect();
        assert_eq!(hub.clients.len(), 2000);
        let queued: Vec<usize> = clients.iter().map(|c| c.inbox.queued()).collect();
        let most = queued.iter().max().unwrap();
        assert!(
            *most < 64 * 1024,
            "the first client has {most} bytes queued"
        );
        assert!(clients.iter().all(|c| c.kicked.is_empty()));
    }

    #[test]
    fn nick_rules_are_enforced_by_the_hub() {
        let mut hub = Hub::new(config(&[]), CancellationToken::new());
        let mut a = TestClient::connect(&mut hub, 1);
        let mut b = TestClient::connect(&mut hub, 2);
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
        b.say(&mut hub, "/nick Alice\u{200B}");
        assert_eq!(
            b.drain(),
            ["!!! 使えない名前です: 見えない書式制御文字（U+200B）は使えません"]
        );
        a.say(&mut hub, "evil \u{202E}txt.exe");
        assert_eq!(
            a.drain(),
            ["!!! 文字の向きを変える制御文字（U+202Eなど）を含む行は送れません"]
        );
        assert!(b.drain().is_empty());
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

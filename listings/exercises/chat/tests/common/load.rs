//! Many clients at once: used by the load tests (`tests/load.rs`, `tests/burst.rs`) and the
//! benchmark (`benches/load.rs`).
//!
//! [`Load`]: every client joins room `r{index % rooms}`, then sends `messages` messages. It sends its
//! message number `k` (from 0) only after it has received `k` rounds' worth of its room's messages,
//! `k × (room size - 1)` (a closed loop, as people in a conversation do). So no client runs two
//! rounds ahead of another, and a client never has more than two rounds of its room's messages
//! waiting in its server-side queue: `2 × (room size - 1)` lines, about 80 KB for a room of 1,000,
//! well under the default `--sendq` of 1 MiB.
//!
//! [`burst`]: clients that all connect at the same moment and keep reading.
//! [`flood`]: one client that writes as fast as it can, and listeners in the same room.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Barrier, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::codec::{FramedRead, LinesCodec};

use super::{Client, WAIT};

#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub clients: usize,
    pub rooms: usize,
    pub messages: usize,
    /// Pause between two messages of one client (zero: as fast as the closed loop allows).
    pub interval: Duration,
    /// How many clients connect at the same time (the joining itself is measured by [`burst`]).
    pub wave: usize,
}

#[derive(Debug, Default)]
pub struct Report {
    /// Messages delivered to clients (each message counts once per receiver).
    pub delivered: u64,
    /// From the first message sent to the last one received.
    pub elapsed: Duration,
    /// Send-to-receive latency of every delivered message.
    pub latencies: Vec<Duration>,
}

impl Report {
    pub fn per_second(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).copied().unwrap_or_default()
    }
}

impl Load {
    fn room_size(&self, room: usize) -> usize {
        (self.clients + self.rooms - 1 - room) / self.rooms
    }

    /// Runs the load against a server and checks every delivery: each client must receive each
    /// message of each other member of its room exactly once, in the order it was sent.
    /// Panics with the reason on the first violation.
    pub async fn run(self, addr: SocketAddr) -> Report {
        let start = Arc::new(Barrier::new(self.clients));
        let done = Arc::new(Barrier::new(self.clients));
        let epoch = Instant::now();
        let mut connected = Vec::with_capacity(self.clients);
        for wave in (0..self.clients).collect::<Vec<_>>().chunks(self.wave) {
            let mut joining = JoinSet::new();
            for &index in wave {
                let room = index % self.rooms;
                joining.spawn(async move {
                    let mut client = Client::tcp(addr).await;
                    // Ask for the room at once: the server handles the lines in order.
                    client.send(&format!("/join r{room}")).await;
                    let (mut client, nick) = Client::welcomed(client).await;
                    client
                        .expect_prefix(&format!("*** r{room}に入りました"))
                        .await;
                    (index, client, nick)
                });
            }
            while let Some(joined) = joining.join_next().await {
                connected.push(joined.expect("a client joined its room"));
            }
        }

        let mut running = JoinSet::new();
        for (index, client, nick) in connected {
            let (start, done) = (Arc::clone(&start), Arc::clone(&done));
            let room = index % self.rooms;
            let others = self.room_size(room) - 1;
            running.spawn(async move {
                start.wait().await;
                // With an interval, spread the clients' first messages evenly over it, so the
                // load is steady instead of 1,000 messages at the same instant.
                let offset = self.interval.mul_f64(index as f64 / self.clients as f64);
                let result = self.talk(client, &nick, room, others, offset, epoch).await;
                // Stay connected until everybody is done, so no one sees departures mid-test.
                done.wait().await;
                result
            });
        }
        let mut report = Report::default();
        let (mut first_sent, mut last_received) = (None::<Duration>, Duration::ZERO);
        while let Some(result) = running.join_next().await {
            let (sent, received, latencies) = result.expect("a client task finished");
            first_sent = Some(first_sent.map_or(sent, |f| f.min(sent)));
            last_received = last_received.max(received);
            report.delivered += latencies.len() as u64;
            report.latencies.extend(latencies);
        }
        report.elapsed = last_received.saturating_sub(first_sent.unwrap_or_default());
        report
    }

    /// One client's conversation. Returns when it sent its first message, when it received its
    /// last one (both since `epoch`) and the latency of each message it received.
    ///
    /// It reads the socket directly rather than with [`Client::next_line`], which keeps a copy
    /// of every line and starts a timer for each: with hundreds of lines for each of 1,000
    /// clients, that bookkeeping is a noticeable part of this process's CPU. One timer per
    /// client, moved forward only when it fires, still fails a client that hears nothing for
    /// [`WAIT`].
    async fn talk(
        self,
        client: Client,
        nick: &str,
        room: usize,
        others: usize,
        offset: Duration,
        epoch: Instant,
    ) -> (Duration, Duration, Vec<Duration>) {
        let Client::Tcp {
            mut lines,
            mut writer,
            ..
        } = client
        else {
            panic!("{nick}: the load runs over TCP");
        };
        let prefix = format!("[r{room}] ");
        let mut next_from: HashMap<String, usize> = HashMap::new();
        let mut latencies = Vec::with_capacity(others * self.messages);
        // With an interval, message `k` is sent at `begin + k × interval` (or later, if round
        // `k - 1` has not arrived yet).
        let begin = tokio::time::Instant::now() + offset;
        let mut sent_first = Duration::ZERO;
        let mut sent = 0;
        let total = others * self.messages;
        // Fires WAIT after the last line; moved forward lazily, only when it fires.
        let mut last_line = tokio::time::Instant::now();
        let stalled = tokio::time::sleep(WAIT);
        tokio::pin!(stalled);
        while sent < self.messages || latencies.len() < total {
            // Message `sent` may go once round `sent - 1` of everyone else has arrived, and not
            // before its time on the schedule. Keep reading while waiting, so that the latency
            // measured is the server's, not this loop's.
            let may_send = sent < self.messages && latencies.len() >= others * sent;
            let due = begin + self.interval * sent as u32;
            tokio::select! {
                line = lines.next() => {
                    let line = line
                        .unwrap_or_else(|| panic!("{nick}: the server closed"))
                        .expect("a UTF-8 line");
                    last_line = tokio::time::Instant::now();
                    if line.starts_with("***") {
                        continue; // someone joined late or renamed: not a message
                    }
                    let body = line
                        .strip_prefix(&prefix)
                        .unwrap_or_else(|| panic!("{nick}: unexpected {line:?}"));
                    let (sender, text) = body.split_once(": ").expect("`nick: text`");
                    let (seq, sent_at) = text.split_once(' ').expect("`seq micros`");
                    let seq: usize = seq.parse().expect("a sequence number");
                    let expected = match next_from.get_mut(sender) {
                        Some(expected) => expected,
                        None => next_from.entry(sender.to_string()).or_default(),
                    };
                    assert_eq!(
                        seq, *expected,
                        "{nick}: message {seq} of {sender} arrived when {expected} was due"
                    );
                    *expected += 1;
                    let sent_at = Duration::from_micros(sent_at.parse().expect("micros"));
                    latencies.push(epoch.elapsed().saturating_sub(sent_at));
                }
                () = &mut stalled => {
                    assert!(
                        last_line.elapsed() < WAIT,
                        "{nick}: no line within {WAIT:?}; received {} of {total}, sent {sent}",
                        latencies.len()
                    );
                    stalled.as_mut().reset(last_line + WAIT);
                }
                () = tokio::time::sleep_until(due), if may_send => {
                    if sent == 0 {
                        sent_first = epoch.elapsed();
                    }
                    let line = format!("{sent} {}\n", epoch.elapsed().as_micros());
                    writer.write_all(line.as_bytes()).await.expect("write a line");
                    sent += 1;
                }
            }
        }
        let received_last = epoch.elapsed();
        assert_eq!(
            next_from.len(),
            others,
            "{nick}: heard from {} of {others} room members",
            next_from.len()
        );
        assert!(
            next_from.values().all(|&n| n == self.messages),
            "{nick}: {next_from:?}"
        );
        (sent_first, received_last, latencies)
    }
}

/// How long a burst or flood client waits for its next line before it gives up.
const PATIENCE: Duration = Duration::from_secs(120);

/// A plain line client for [`burst`] and [`flood`]: reads with [`PATIENCE`], not `WAIT`.
struct Reader(FramedRead<tokio::net::tcp::OwnedReadHalf, LinesCodec>);

impl Reader {
    async fn next(&mut self) -> Option<String> {
        match tokio::time::timeout(PATIENCE, self.0.next()).await {
            Ok(Some(Ok(line))) => Some(line),
            Ok(_) => None,
            Err(_) => panic!("no line within {PATIENCE:?}"),
        }
    }
}

async fn connect(addr: SocketAddr) -> (Reader, tokio::net::tcp::OwnedWriteHalf, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (reader, writer) = stream.into_split();
    let mut reader = Reader(FramedRead::new(reader, LinesCodec::new()));
    let welcome = reader.next().await.expect("a welcome line");
    let nick = welcome
        .strip_prefix("*** チャットサーバーへようこそ！あなたは")
        .and_then(|rest| rest.strip_suffix("です。"))
        .unwrap_or_else(|| panic!("unexpected welcome {welcome:?}"))
        .to_string();
    (reader, writer, nick)
}

#[derive(Debug)]
pub struct BurstReport {
    pub clients: usize,
    /// From the first connect to the last client's "you are in the lobby" line.
    pub join_time: Duration,
    /// Clients the server closed or sent a `!!!` line to.
    pub disconnected: usize,
    /// Clients that heard the message sent after everybody had joined.
    pub heard_after: usize,
    /// The most lines one client received before that message.
    pub most_lines: usize,
}

/// `clients` clients connect all at once to the lobby and keep reading. Once all are in, one more
/// client says `burst-done`; every burst client must hear it.
pub async fn burst(addr: SocketAddr, clients: usize) -> BurstReport {
    let (joined_tx, mut joined_rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let joined = joined_tx.clone();
        tasks.spawn(async move {
            let (mut reader, _writer, _nick) = connect(addr).await;
            let mut lines = 0;
            while let Some(line) = reader.next().await {
                lines += 1;
                if line.starts_with("*** lobbyに入りました") {
                    let _ = joined.send(());
                } else if line.starts_with("!!!") {
                    return (false, false, lines);
                } else if line.ends_with(": burst-done") {
                    return (true, true, lines);
                }
            }
            (false, false, lines)
        });
    }
    drop(joined_tx);
    let mut joined = 0;
    while joined < clients && joined_rx.recv().await.is_some() {
        joined += 1;
    }
    let join_time = started.elapsed();
    let (_reader, mut writer, _nick) = connect(addr).await;
    writer.write_all(b"burst-done\n").await.expect("send");
    let mut report = BurstReport {
        clients,
        join_time,
        disconnected: 0,
        heard_after: 0,
        most_lines: 0,
    };
    while let Some(result) = tasks.join_next().await {
        let (stayed, heard, lines) = result.expect("a burst client");
        report.disconnected += usize::from(!stayed);
        report.heard_after += usize::from(heard);
        report.most_lines = report.most_lines.max(lines);
    }
    report
}

#[derive(Debug)]
pub struct FloodReport {
    /// Lines the flooder managed to write into its socket before it stopped (TCP pushed back,
    /// the server cut it, or it wrote them all).
    pub written: usize,
    /// The flooder's last line from the server and when it came, if it was cut.
    pub cut: Option<(Duration, String)>,
    pub listeners: usize,
    pub listeners_disconnected: usize,
    /// Flood lines each listener received: fewest and most.
    pub heard: (usize, usize),
    /// When the last flood line reached a listener.
    pub last_heard: Duration,
}

/// One client writes `lines` lines as fast as TCP lets it; `listeners` clients in the same room read.
/// Stops when the server cuts the flooder, or after `watch`; the listeners then read for `settle`
/// more (what is still on its way to them).
pub async fn flood(
    addr: SocketAddr,
    listeners: usize,
    lines: usize,
    watch: Duration,
    settle: Duration,
) -> FloodReport {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut ears = JoinSet::new();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    for _ in 0..listeners {
        let mut stop = stop_rx.clone();
        let ready = ready_tx.clone();
        ears.spawn(async move {
            let (mut reader, _writer, _nick) = connect(addr).await;
            let _ = ready.send(());
            let (mut heard, mut last) = (0, Duration::ZERO);
            let started = Instant::now();
            loop {
                tokio::select! {
                    line = reader.next() => match line {
                        Some(line) if line.starts_with("!!!") => return (false, heard, last),
                        Some(line) if line.contains(": flood ") => {
                            heard += 1;
                            last = started.elapsed();
                        }
                        Some(_) => {}
                        None => return (false, heard, last),
                    },
                    _ = stop.changed() => return (true, heard, last),
                }
            }
        });
    }
    drop(ready_tx);
    for _ in 0..listeners {
        ready_rx.recv().await.expect("a listener connected");
    }
    let (mut reader, mut writer, _nick) = connect(addr).await;
    let started = Instant::now();
    let written = Arc::new(AtomicUsize::new(0));
    let writing = tokio::spawn({
        let written = Arc::clone(&written);
        async move {
            for n in 0..lines {
                let line = format!("flood {n}\n");
                if writer.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
                written.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let mut cut = None;
    let _ = tokio::time::timeout(watch, async {
        let mut last = None;
        while let Some(line) = reader.next().await {
            last = Some(line);
        }
        cut = last.map(|line| (started.elapsed(), line));
    })
    .await;
    // Let the listeners read what is still on its way, then stop them.
    tokio::time::sleep(settle).await;
    let _ = stop_tx.send(true);
    writing.abort();
    let mut report = FloodReport {
        written: written.load(Ordering::Relaxed),
        cut,
        listeners,
        listeners_disconnected: 0,
        heard: (usize::MAX, 0),
        last_heard: Duration::ZERO,
    };
    while let Some(result) = ears.join_next().await {
        let (stayed, heard, last) = result.expect("a listener");
        report.listeners_disconnected += usize::from(!stayed);
        report.heard = (report.heard.0.min(heard), report.heard.1.max(heard));
        report.last_heard = report.last_heard.max(last);
    }
    report
}

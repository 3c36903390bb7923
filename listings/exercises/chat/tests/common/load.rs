//! Many clients at once: used by the load test (`tests/load.rs`) and the benchmark (`benches/load.rs`).
//!
//! Every client joins room `r{index % rooms}`, then sends `messages` messages. It sends its message
//! number `k` (from 0) only after it has received `k` rounds' worth of its room's messages,
//! `k × (room size - 1)` (a closed loop, as people in a conversation do). So no client runs two
//! rounds ahead of another, and a client never has more than two rounds of its room's messages
//! waiting in its server-side queue: `2 × (room size - 1)` lines. That is what `--queue` must hold
//! for nobody to be disconnected as a slow reader (256 by default: rooms of up to 128).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::Client;

#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub clients: usize,
    pub rooms: usize,
    pub messages: usize,
    /// Pause between two messages of one client (zero: as fast as the closed loop allows).
    pub interval: Duration,
    /// How many clients connect at the same time. Everybody starts in the lobby and every arrival
    /// is announced to everybody there, so connecting 1,000 at once would mean ~500,000 notices.
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
    async fn talk(
        self,
        mut client: Client,
        nick: &str,
        room: usize,
        others: usize,
        offset: Duration,
        epoch: Instant,
    ) -> (Duration, Duration, Vec<Duration>) {
        let prefix = format!("[r{room}] ");
        let mut next_from: HashMap<String, usize> = HashMap::new();
        let mut latencies = Vec::with_capacity(others * self.messages);
        // With an interval, message `k` is sent at `begin + k × interval` (or later, if round
        // `k - 1` has not arrived yet).
        let begin = tokio::time::Instant::now() + offset;
        let mut sent_first = Duration::ZERO;
        let mut sent = 0;
        let total = others * self.messages;
        while sent < self.messages || latencies.len() < total {
            // Message `sent` may go once round `sent - 1` of everyone else has arrived, and not
            // before its time on the schedule. Keep reading while waiting, so that the latency
            // measured is the server's, not this loop's.
            let may_send = sent < self.messages && latencies.len() >= others * sent;
            let due = begin + self.interval * sent as u32;
            tokio::select! {
                line = client.next_line() => {
                    let line = line.unwrap_or_else(|| panic!("{nick}: the server closed"));
                    if line.starts_with("***") {
                        continue; // someone joined late or renamed: not a message
                    }
                    let body = line
                        .strip_prefix(&prefix)
                        .unwrap_or_else(|| panic!("{nick}: unexpected {line:?}"));
                    let (sender, text) = body.split_once(": ").expect("`nick: text`");
                    let (seq, sent_at) = text.split_once(' ').expect("`seq micros`");
                    let seq: usize = seq.parse().expect("a sequence number");
                    let expected = next_from.entry(sender.to_string()).or_default();
                    assert_eq!(
                        seq, *expected,
                        "{nick}: message {seq} of {sender} arrived when {expected} was due"
                    );
                    *expected += 1;
                    let sent_at = Duration::from_micros(sent_at.parse().expect("micros"));
                    latencies.push(epoch.elapsed().saturating_sub(sent_at));
                }
                () = tokio::time::sleep_until(due), if may_send => {
                    if sent == 0 {
                        sent_first = epoch.elapsed();
                    }
                    client.send(&format!("{sent} {}", epoch.elapsed().as_micros())).await;
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

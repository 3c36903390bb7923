//! 1つの接続の一生: ハブに登録し、読む・書く・追い出される・止まるのうち最初に起きたことで終える。
//! TCPでもWebSocketでも、ここは同じです。

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::config::Config;
use crate::hub::{ClientId, Command, Hub, Inbox, send_queue};
use crate::protocol::{Farewell, Input, Output};

/// ハブの受信箱の長さ。満杯になると、各接続は空くまで読み込みを止めます。
const HUB_QUEUE: usize = 1024;
/// 別れのあいさつを書き込むのに待つ上限。相手が読まなくても、ここであきらめます。
pub const FAREWELL_TIMEOUT: Duration = Duration::from_secs(2);

// ANCHOR: chat
/// 接続を受け付ける側が共有するもの。`Clone`は安価です（中身はすべて参照カウント付き）。
#[derive(Clone)]
pub struct Chat {
    pub config: Arc<Config>,
    hub: mpsc::Sender<Command>,
    /// 空いている席の数。`--max-clients`個の許可証を、TCPの接続が開いているあいだ1つずつ持ちます。
    pub seats: Arc<Semaphore>,
    next_id: Arc<AtomicU64>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}
// ANCHOR_END: chat

impl Chat {
    /// ハブのタスクを起動し、接続のタスクが共有するものをまとめます。
    pub fn start(config: Arc<Config>, shutdown: CancellationToken) -> Chat {
        let (hub, commands) = mpsc::channel(HUB_QUEUE);
        tokio::spawn(Hub::new(Arc::clone(&config), shutdown.clone()).run(commands));
        Chat {
            seats: Arc::new(Semaphore::new(config.max_clients)),
            config,
            hub,
            next_id: Arc::new(AtomicU64::new(1)),
            shutdown,
            tracker: TaskTracker::new(),
        }
    }

    /// 満員のときに送る1行。
    pub fn full_message(&self) -> String {
        format!(
            "!!! 満員です（最大{}人）。しばらくしてから接続してください",
            self.config.max_clients
        )
    }
}

// ANCHOR: connection
/// 1つの接続を最後まで面倒を見ます。TCPとWebSocketのどちらもここを通ります。
pub async fn connection<St, Si>(
    chat: Chat,
    peer: SocketAddr,
    transport: &'static str,
    lines: St,
    mut output: Si,
) where
    St: Stream<Item = io::Result<Input>> + Unpin,
    Si: Sink<Output> + Unpin,
    Si::Error: fmt::Display,
{
    let id = chat.next_id.fetch_add(1, Ordering::Relaxed);
    let (outbox, mut inbox) = send_queue();
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

    // 読む側が「PINGを送って」と書く側に頼むためのチャネル。
    let (ping, mut pings) = mpsc::channel(1);
    // 送信キューから取り出したけれど、まだ`output`に渡していないもの。
    let mut taken = None;
    // 読む・書く・追い出される・停止する、のうち最初に起きたことで接続を終えます。
    let farewell = tokio::select! {
        farewell = read_lines(&chat, id, lines, &ping) => farewell,
        () = write_lines(&mut inbox, &mut pings, &mut taken, &mut output) => kicked.try_recv().ok(),
        Ok(farewell) = &mut kicked => Some(farewell),
        () = chat.shutdown.cancelled() => Some(Farewell::Shutdown),
    };
    // `select!`が終わると残りのFutureはドロップされ、`output`をまた使えるようになります。
    let _ = chat.hub.send(Command::Disconnect { id }).await;
    if let Some(farewell) = farewell {
        debug!(id, %farewell, "切断します");
        // 相手が読んでくれなくても、`FAREWELL_TIMEOUT`であきらめます。
        let _ = timeout(FAREWELL_TIMEOUT, async {
            // キューから取り出し済みの1行は、どの理由でも書きます（キューにはもう残っていません）。
            if let Some(next) = taken.take() {
                output.feed(next).await?;
            }
            // 遅すぎて追い出すときは、キューに溜まった行は捨てて理由だけを送ります。
            if !matches!(farewell, Farewell::TooSlow(_)) {
                while let Some(line) = inbox.try_recv() {
                    output.feed(Output::Line(line)).await?;
                }
            }
            output
                .feed(Output::Line(farewell.to_string().into()))
                .await?;
            output.close().await
        })
        .await;
    }
}
// ANCHOR_END: connection

// ANCHOR: flood_gate
/// 送りすぎを抑えるトークンバケツ（RFC 1459 8.10節の「メッセージタイマー」と同じ考え方）。
///
/// 1行ごとにタイマーを`interval`だけ進め、タイマーが今から`burst × interval`より先に
/// 進んでしまう行は、追いつくまで待たせます。最初は`burst`行まで続けて送れて、
/// そのあとは`interval`に1行の割合になります。
#[derive(Debug)]
pub struct FloodGate {
    interval: Duration,
    window: Duration,
    timer: Instant,
}

impl FloodGate {
    pub fn new(burst: usize, interval: Duration, now: Instant) -> Self {
        let burst = u32::try_from(burst).unwrap_or(u32::MAX);
        FloodGate {
            interval,
            window: interval.saturating_mul(burst),
            timer: now,
        }
    }

    /// 今1行を受け付けてよければ`Ok`（タイマーを進めます）。だめなら、受け付けられる時刻を返します。
    pub fn admit(&mut self, now: Instant) -> Result<(), Instant> {
        let timer = self.timer.max(now);
        if timer + self.interval <= now + self.window {
            self.timer = timer + self.interval;
            Ok(())
        } else {
            Err(timer + self.interval - self.window)
        }
    }
}
// ANCHOR_END: flood_gate

// ANCHOR: read_write
/// クライアントの行をハブへ渡します。`Some`を返したら、その理由を伝えて切断します。
async fn read_lines<St>(
    chat: &Chat,
    id: ClientId,
    mut lines: St,
    ping: &mpsc::Sender<u64>,
) -> Option<Farewell>
where
    St: Stream<Item = io::Result<Input>> + Unpin,
{
    let config = &chat.config;
    let mut gate = FloodGate::new(config.flood_burst, config.flood_interval, Instant::now());
    // 送りすぎで読み込みを止め始めた時刻。止めずに受け付けられた行が来たら`None`に戻ります。
    let mut throttled_since = None;
    let mut pings_sent = 0;
    loop {
        // `--ping-interval`のあいだ何も届かなければPINGを送り、`--ping-timeout`まで待ちます。
        let next = match timeout(config.ping_interval, lines.next()).await {
            Ok(next) => next,
            Err(_quiet) => {
                pings_sent += 1;
                let _ = ping.try_send(pings_sent);
                match timeout(config.ping_timeout, lines.next()).await {
                    Ok(next) => next,
                    Err(_dead) => return Some(Farewell::NoPong(config.ping_timeout)),
                }
            }
        };
        let input = match next {
            None => return None, // 相手が閉じた
            Some(Err(e)) => {
                debug!(id, error = %e, "読み込みに失敗しました");
                return None;
            }
            Some(Ok(input)) => input,
        };
        if matches!(&input, Input::Line(line) if line.trim() == "/quit") {
            return Some(Farewell::Quit);
        }
        // 送りすぎなら、受け付けられる時刻まで次を読みません。そのあいだソケットの受信バッファが
        // 埋まり、TCPのフロー制御で送り手のほうが止まります（背圧）。
        let now = Instant::now();
        if let Err(ready) = gate.admit(now) {
            let since = *throttled_since.get_or_insert(now);
            if ready > since + config.flood_kick {
                return Some(Farewell::Flood(config.flood_kick));
            }
            debug!(id, wait = ?ready - now, "送信が速すぎるので、読み込みを止めます");
            sleep_until(ready).await;
            gate.admit(ready).expect("the gate opens at `ready`");
        } else {
            throttled_since = None;
        }
        // ハブの受信箱が満杯なら、ここでも待ちます（同じく背圧）。
        if chat.hub.send(Command::Input { id, input }).await.is_err() {
            return None;
        }
    }
}

/// 送信キューの行とPINGをクライアントへ書きます。キューが閉じるか、書けなくなったら終わります。
///
/// 取り出した行は、`output`が受け取れる状態になってから`taken`から渡します。書き込みを待つあいだに
/// キャンセルされても、その行は`taken`に残り、別れのあいさつの前に書かれます。
async fn write_lines<Si>(
    inbox: &mut Inbox,
    pings: &mut mpsc::Receiver<u64>,
    taken: &mut Option<Output>,
    output: &mut Si,
) where
    Si: Sink<Output> + Unpin,
    Si::Error: fmt::Display,
{
    loop {
        // 溜まっているものは待たずに取り出し、空のときだけ`select!`で待ちます。
        if taken.is_none() {
            *taken = match pings.try_recv() {
                Ok(n) => Some(Output::Ping(n)),
                Err(_) => inbox.try_recv().map(Output::Line),
            };
        }
        if taken.is_none() {
            *taken = Some(tokio::select! {
                biased;
                Some(n) = pings.recv() => Output::Ping(n),
                line = inbox.recv() => match line {
                    Some(line) => Output::Line(line),
                    None => return,
                },
            });
        }
        let result = async {
            poll_fn(|cx| output.poll_ready_unpin(cx)).await?;
            output.start_send_unpin(taken.take().expect("filled above"))?;
            // 溜まっている分をまとめて渡してから1回だけflushするので、システムコールが減ります。
            if inbox.is_empty() && pings.is_empty() {
                output.flush().await?;
            }
            Ok::<_, Si::Error>(())
        };
        if let Err(e) = result.await {
            debug!(error = %e, "書き込みに失敗しました");
            return;
        }
    }
}
// ANCHOR_END: read_write

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{LineDecoder, LineEncoder};
    use clap::Parser;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
    use tokio_util::codec::{FramedRead, FramedWrite};

    fn chat(args: &[&str]) -> Chat {
        let config = Config::parse_from(std::iter::once("chat-server").chain(args.iter().copied()));
        Chat::start(Arc::new(config), CancellationToken::new())
    }

    /// メモリの中のパイプ（`duplex`）でつないだクライアント。`connection`はTCPと同じコーデックで動きます。
    fn connect(
        chat: &Chat,
        buffer: usize,
    ) -> (
        tokio::io::Lines<BufReader<tokio::io::ReadHalf<DuplexStream>>>,
        tokio::io::WriteHalf<DuplexStream>,
    ) {
        let (client, server) = tokio::io::duplex(buffer);
        let (reader, writer) = tokio::io::split(server);
        let lines = FramedRead::new(reader, LineDecoder::new(chat.config.max_line));
        let output = FramedWrite::new(writer, LineEncoder);
        let peer = "127.0.0.1:1".parse().unwrap();
        chat.tracker
            .spawn(connection(chat.clone(), peer, "test", lines, output));
        let (reader, writer) = tokio::io::split(client);
        (BufReader::new(reader).lines(), writer)
    }

    async fn next(
        lines: &mut tokio::io::Lines<BufReader<tokio::io::ReadHalf<DuplexStream>>>,
    ) -> Option<String> {
        lines.next_line().await.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_allows_a_burst_then_a_steady_rate() {
        let start = Instant::now();
        let mut gate = FloodGate::new(10, Duration::from_millis(500), start);
        for _ in 0..10 {
            assert_eq!(gate.admit(start), Ok(()));
        }
        let ready = gate.admit(start).unwrap_err();
        assert_eq!(ready - start, Duration::from_millis(500));
        // 待てば1行ずつ、500ミリ秒ごとに通ります。
        assert_eq!(gate.admit(ready), Ok(()));
        assert_eq!(
            gate.admit(ready).unwrap_err() - ready,
            Duration::from_millis(500)
        );
        // 5秒休めば、また10行続けて送れます。
        let later = ready + Duration::from_secs(5);
        assert!((0..10).all(|_| gate.admit(later).is_ok()));
        assert!(gate.admit(later).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_flooder_is_slowed_down_then_cut_and_the_others_hear_little() {
        let chat = chat(&[
            "--flood-burst",
            "5",
            "--flood-interval",
            "1s",
            "--flood-kick",
            "10s",
        ]);
        let (mut listener, _keep) = connect(&chat, 1 << 16);
        for _ in 0..3 {
            next(&mut listener).await;
        }
        let (mut flooder_in, mut flooder) = connect(&chat, 1 << 16);
        let started = Instant::now();
        let writing = tokio::spawn(async move {
            let mut sent = 0;
            while sent < 60_000 {
                if flooder
                    .write_all(format!("{sent}\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
                sent += 1;
            }
            sent
        });
        let mut heard = Vec::new();
        while let Some(line) = next(&mut listener).await {
            if line.contains("が退出しました") {
                break;
            }
            if line.starts_with("[lobby]") {
                heard.push(Instant::now() - started);
            }
        }
        // 最初の5行はすぐ、そのあとは1秒に1行。10秒続いたところで切断されます。
        assert!(
            heard[..5].iter().all(|t| *t < Duration::from_millis(10)),
            "{heard:?}"
        );
        assert!(
            (14..=16).contains(&heard.len()),
            "{} lines: {heard:?}",
            heard.len()
        );
        let cut_at = Instant::now() - started;
        assert!(
            (Duration::from_secs(10)..Duration::from_secs(12)).contains(&cut_at),
            "{cut_at:?}"
        );
        let mut last = None;
        while let Some(line) = next(&mut flooder_in).await {
            last = Some(line);
        }
        assert_eq!(
            last.as_deref(),
            Some("!!! 送信が速すぎる状態が10秒続いたので切断します")
        );
        // 書き手は背圧で止められていて、60,000行のほとんどは送れていません。
        let sent = writing.await.unwrap();
        assert!(sent < 60_000, "the flooder wrote all {sent} lines");
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_reader_that_answers_pings_stays_and_a_silent_one_is_cut() {
        let chat = chat(&["--ping-interval", "2m", "--ping-timeout", "1m"]);
        let (mut quiet, mut quiet_out) = connect(&chat, 1 << 16);
        let (mut dead, _dead_out) = connect(&chat, 1 << 16);
        let started = Instant::now();
        for _ in 0..3 {
            next(&mut quiet).await;
        }
        // 1時間のあいだ、PINGに答えるだけで何も話しません。
        let mut pings = 0;
        while Instant::now() - started < Duration::from_secs(3600) {
            let line = next(&mut quiet)
                .await
                .expect("the quiet reader stays connected");
            if let Some(n) = line.strip_prefix("PING ") {
                pings += 1;
                quiet_out
                    .write_all(format!("PONG {n}\n").as_bytes())
                    .await
                    .unwrap();
            }
        }
        assert!(pings >= 25, "{pings} pings in an hour");
        // 答えないほうは、最初のPINGから1分後に切断されています。
        let mut seen = Vec::new();
        while let Some(line) = next(&mut dead).await {
            seen.push(line);
        }
        assert_eq!(
            seen[seen.len() - 2..],
            [
                "PING 1",
                "!!! PINGに1分のあいだ応答がなかったので切断します"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn lines_taken_from_the_queue_are_written_before_the_farewell() {
        let chat = chat(&[]);
        // 受け手の側のパイプは64バイトしかないので、書く側はすぐに書き込みを待つ状態になります。
        let (mut reader, mut reader_out) = connect(&chat, 64);
        let (_talker_in, mut talker) = connect(&chat, 1 << 16);
        // 1,000バイトの行を20行。`FramedWrite`のバッファ（8KiB）を超えるので、
        // 書く側は行を受け取る前に、書き出しを待つことになります。
        let padding = ".".repeat(1000);
        for n in 0..20 {
            talker
                .write_all(format!("{n} {padding}\n").as_bytes())
                .await
                .unwrap();
        }
        // 一時停止した時計で、送りすぎの制限（500ミリ秒に1行）の分だけ進めます。
        tokio::time::sleep(Duration::from_secs(10)).await;
        // 読まないまま/quitすると、キューの残りと、書きかけで止まっていた行がすべて届きます。
        reader_out.write_all(b"/quit\n").await.unwrap();
        let mut seen = Vec::new();
        while let Some(line) = next(&mut reader).await {
            seen.push(line);
        }
        let messages: Vec<String> = seen
            .iter()
            .filter_map(|l| l.strip_prefix("[lobby] guest-2: "))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect();
        let expected: Vec<String> = (0..20).map(|n| n.to_string()).collect();
        assert_eq!(messages, expected);
        assert_eq!(seen.last().map(String::as_str), Some("*** さようなら"));
    }
}

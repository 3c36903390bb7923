//! 練習問題5の解答例: タスクを複数のワーカープロセスに分散して実行するディスパッチャ。
//!
//! 実行方法:
//!   cargo run -p balancer -- --demo                          組み込みのサンプルタスクを流す
//!   cargo run -p balancer -- tasks.jsonl                     ファイルのタスクを流す
//!   printf '{"id":1,"cpu":1000}\n' | cargo run -p balancer   標準入力のタスクを流す
//! タスクは1行1つのJSON（JSON Lines）です。結果も1タスク1行のJSONで標準出力に出て、
//! ログと最後の集計は標準エラー出力に出ます。ワーカーは同じ実行ファイルを`worker`引数で
//! 起動し直したプロセスです。Ctrl-Cを押すと新しいタスクを止め、実行中のものを待ってから終わります。

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::thread;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

// ANCHOR: protocol
/// 入力の1行であり、ワーカーへ送る1行でもあるタスク。例:
/// `{"id":1,"cpu":100000}`、`{"id":2,"sleep_ms":50}`、`{"id":3,"fault":"crash"}`
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Task {
    id: u64,
    #[serde(flatten)]
    work: Work,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Work {
    /// CPUを使う仕事: 1からnまでのi²の和
    Cpu(u64),
    /// 待つだけの仕事（I/O待ちの代わり）
    SleepMs(u64),
    /// わざと障害を起こす（テストとデモのため）
    Fault(Fault),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Fault {
    /// ワーカーが異常終了する
    Crash,
    /// ワーカーが応答しなくなる
    Hang,
    /// ワーカーがJSONでない行を書く
    Garbage,
}

/// ワーカーからの返事（1行）。例: `{"id":1,"value":385}`、`{"id":4,"error":"..."}`
#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    id: u64,
    #[serde(flatten)]
    answer: Answer,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Value(u64),
    Error(String),
}

/// 標準出力に書く結果の1行。どのタスクも、ちょうど1回このどちらかで報告されます。
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Outcome {
    Ok {
        id: u64,
        value: u64,
        worker: usize,
        attempts: u32,
    },
    Failed {
        id: u64,
        error: String,
        attempts: u32,
    },
}
// ANCHOR_END: protocol

// ANCHOR: worker
/// `balancer worker`として起動されたときの本体です。標準入力からタスクを1行ずつ読み、
/// 順番に実行して、返事を1行ずつ標準出力に書きます。非同期もスレッドも使わない普通のプログラムです。
fn worker_main() -> io::Result<()> {
    let mut out = io::stdout().lock();
    for line in io::stdin().lock().lines() {
        let task: Task = serde_json::from_str(&line?)?;
        let answer = match task.work {
            Work::Cpu(n) => match sum_of_squares(n) {
                Some(sum) => Answer::Value(sum),
                None => Answer::Error(format!("{n}までのi²の和はu64に収まりません")),
            },
            Work::SleepMs(ms) => {
                thread::sleep(Duration::from_millis(ms));
                Answer::Value(ms)
            }
            Work::Fault(Fault::Crash) => std::process::exit(70),
            Work::Fault(Fault::Hang) => loop {
                thread::sleep(Duration::from_secs(3600));
            },
            Work::Fault(Fault::Garbage) => {
                writeln!(out, "これはJSONではありません")?;
                out.flush()?;
                continue;
            }
        };
        let reply = Reply {
            id: task.id,
            answer,
        };
        serde_json::to_writer(&mut out, &reply)?;
        out.write_all(b"\n")?;
        // 1行ごとに送り出します。バッファに溜めたままだと、ディスパッチャには応答がないように見えます
        out.flush()?;
    }
    Ok(()) // 標準入力が閉じた: ディスパッチャからの「もう仕事はない」という合図
}

/// 1からnまでのi²の和。u64に収まらなければ`None`です。
fn sum_of_squares(n: u64) -> Option<u64> {
    let mut sum = 0u64;
    for i in 1..=n {
        // black_boxがないと、最適化でループが公式に置き換えられることがあります
        let i = std::hint::black_box(i);
        sum = sum.checked_add(i.checked_mul(i)?)?;
    }
    Some(sum)
}
// ANCHOR_END: worker

// ANCHOR: spawn
/// 自分自身の実行ファイルを`worker`引数付きで起動します（19.2節と同じ方法です）。
fn spawn_worker() -> io::Result<Child> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit()) // ワーカーのエラーメッセージはそのまま端末に出します
        .kill_on_drop(true); // ハンドルをなくしても、子プロセスを置き去りにしないための保険
    // 端末のCtrl-Cはフォアグラウンドのプロセスグループ全体に届きます。ワーカーを別のグループに
    // 入れておき、いつ止めるかはディスパッチャが決めます
    #[cfg(unix)]
    command.process_group(0);
    command.spawn()
}
// ANCHOR_END: spawn

// ANCHOR: supervise
/// 見張りのタスクからディスパッチャへの知らせ。`generation`はどのプロセスからの知らせかを表します。
#[derive(Debug)]
enum Event {
    Reply {
        slot: usize,
        generation: u64,
        reply: Reply,
    },
    Down {
        slot: usize,
        generation: u64,
        reason: String,
    },
}

/// 見張りのループが終わった理由。
enum Stop {
    /// ディスパッチャが`kill`で止めた
    Killed,
    /// ワーカーが出力を閉じた（終了した）
    Closed,
    /// ワーカーが約束と違う行を書いた
    Malformed(String),
}

/// 1つのワーカープロセスを受け持つタスクです。タスクを標準入力へ書き、返事を読んで`events`へ送り、
/// プロセスが終わったら（または`kill`で止められたら）終了を待って回収します。
async fn supervise(
    mut child: Child,
    slot: usize,
    generation: u64,
    mut tasks: mpsc::UnboundedReceiver<Task>,
    kill: CancellationToken,
    events: mpsc::Sender<Event>,
) {
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        unreachable!("spawn_worker pipes stdin and stdout");
    };
    // 書き込みは別のタスクで行います。応答しないワーカーのパイプが詰まっても、
    // 読み取りと`kill`は止まりません
    let writer = tokio::spawn(async move {
        while let Some(task) = tasks.recv().await {
            let mut line = serde_json::to_vec(&task).expect("a Task always serializes");
            line.push(b'\n');
            if stdin.write_all(&line).await.is_err() {
                break; // ワーカーが終わっています。読み取り側がEOFで気づきます
            }
        }
        // ここで`stdin`がドロップされ、パイプが閉じます。ワーカーにとっての入力の終わりです
    });

    let mut stdout = BufReader::new(stdout);
    let stop = loop {
        tokio::select! {
            () = kill.cancelled() => break Stop::Killed,
            line = read_line(&mut stdout) => match line {
                Ok(Some(line)) => match serde_json::from_str::<Reply>(&line) {
                    Ok(reply) => {
                        let _ = events.send(Event::Reply { slot, generation, reply }).await;
                    }
                    Err(e) => break Stop::Malformed(format!("ワーカーの出力が不正です（{e}）: {line:.60}")),
                },
                Ok(None) => break Stop::Closed,
                Err(e) => break Stop::Malformed(format!("ワーカーの出力が不正です（{e}）")),
            },
        }
    };
    writer.abort();
    if !matches!(stop, Stop::Closed) {
        let _ = child.start_kill(); // 止めろと言われた、または約束を破ったプロセスは殺します
    }
    // 出力を閉じたのにまだ生きているプロセスも、少し待ってから殺します。どの道でも必ず回収します
    let status = match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    let reason = match (stop, status) {
        (Stop::Killed, _) => return, // ディスパッチャが止めたプロセス。もう次へ進んでいます
        (Stop::Malformed(reason), _) => reason,
        (Stop::Closed, Ok(status)) => format!("ワーカーが終了しました（{status}）"),
        (Stop::Closed, Err(e)) => format!("ワーカーの終了を確かめられません（{e}）"),
    };
    let _ = events
        .send(Event::Down {
            slot,
            generation,
            reason,
        })
        .await;
}
// ANCHOR_END: supervise

// ANCHOR: read_line
/// 1行の長さの上限。改行を書かないワーカーや巨大な入力で、メモリを使い切らないためです。
const MAX_LINE: usize = 64 * 1024;

/// 改行までの1行を、`MAX_LINE`バイトまで読みます。入力の終わりなら`None`です。
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    reader
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await?;
    finish_line(buf)
}

/// 入力ファイル用の同期版です。
fn read_line_blocking(reader: impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    reader
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    finish_line(buf)
}

fn finish_line(mut buf: Vec<u8>) -> io::Result<Option<String>> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE {
        let message = format!("1行が{MAX_LINE}バイトを超えています");
        return Err(io::Error::new(io::ErrorKind::InvalidData, message));
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
// ANCHOR_END: read_line

// ANCHOR: strategy
/// どのワーカーに次のタスクを渡すか。
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Strategy {
    /// 順番に回す。負荷は見ず、次の番のワーカーが満杯なら空くまで待つ
    RoundRobin,
    /// 抱えているタスクがいちばん少ないワーカー
    LeastOutstanding,
    /// ランダムに2つ選び、抱えているタスクが少ないほう
    PowerOfTwo,
}

struct Picker {
    strategy: Strategy,
    next: usize, // ラウンドロビンの次の番
    rng: fastrand::Rng,
}

impl Picker {
    /// `loads[i]`はワーカー`i`が抱えているタスクの数（止まっていれば`None`）です。
    /// 渡せるワーカーがなければ`None`を返し、ディスパッチャは入力を読むのを待ちます（背圧）。
    fn pick(&mut self, loads: &[Option<usize>], limit: usize) -> Option<usize> {
        let has_room = |i: usize| loads[i].is_some_and(|n| n < limit);
        match self.strategy {
            Strategy::RoundRobin => {
                // 止まっているワーカーは飛ばしますが、満杯のワーカーは飛ばしません
                let turn = (0..loads.len())
                    .map(|k| (self.next + k) % loads.len())
                    .find(|&i| loads[i].is_some())?;
                has_room(turn).then_some(turn)
            }
            Strategy::LeastOutstanding => (0..loads.len())
                .filter(|&i| has_room(i))
                .min_by_key(|&i| loads[i]),
            Strategy::PowerOfTwo => {
                let candidates = (0..loads.len()).filter(|&i| has_room(i));
                let two = self.rng.choose_multiple(candidates, 2);
                two.into_iter().min_by_key(|&i| loads[i])
            }
        }
    }

    /// ワーカー`i`にタスクを渡したことを記録します。
    fn dispatched(&mut self, i: usize, workers: usize) {
        self.next = (i + 1) % workers;
    }
}
// ANCHOR_END: strategy

/// 出力を閉じたワーカーが自分で終わるのを待つ時間。過ぎたら殺します。
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// 再起動の待ち時間の初め。続けて落ちるたびに倍になります。
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// 続けて`failures`回落ちたワーカーを再起動するまでの待ち時間: 100ミリ秒、200ミリ秒、400ミリ秒、…最大5秒。
fn backoff(failures: u32) -> Duration {
    BACKOFF_BASE
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_MAX)
}

// ANCHOR: state
/// ディスパッチャが抱えているタスク。値として1か所にしかないので、二重に報告できません。
#[derive(Debug)]
struct Pending {
    task: Task,
    /// ワーカーに渡した回数
    attempts: u32,
    /// 実行中にワーカーが落ちた（または時間切れになった）回数
    failures: u32,
}

enum SlotState {
    Up {
        tasks: mpsc::UnboundedSender<Task>,
        kill: CancellationToken,
    },
    Restarting {
        at: Instant,
    },
    Stopped,
}

/// ワーカー1つぶんの席。中のプロセスは入れ替わりますが、席の番号は変わりません。
struct Slot {
    state: SlotState,
    /// いま動いているプロセスの番号。古いプロセスからの知らせを見分けます
    generation: u64,
    /// 渡して返事を待っているタスク（渡した順。ワーカーは順番に実行します）
    in_flight: VecDeque<Pending>,
    /// 先頭のタスクの実行が始まった時刻。ここからタイムアウトを測ります
    busy_since: Option<Instant>,
    failures_in_a_row: u32,
    completed: u64,
    restarts: u32,
}
// ANCHOR_END: state

impl Pending {
    fn new(task: Task) -> Pending {
        Pending {
            task,
            attempts: 0,
            failures: 0,
        }
    }
}

impl Slot {
    fn new() -> Slot {
        Slot {
            state: SlotState::Stopped,
            generation: 0,
            in_flight: VecDeque::new(),
            busy_since: None,
            failures_in_a_row: 0,
            completed: 0,
            restarts: 0,
        }
    }

    fn load(&self) -> Option<usize> {
        matches!(self.state, SlotState::Up { .. }).then_some(self.in_flight.len())
    }
}

/// 実行の設定（コマンドライン引数から）。
struct Limits {
    in_flight: usize,
    timeout: Duration,
    max_attempts: u32,
}

struct Dispatcher {
    limits: Limits,
    slots: Vec<Slot>,
    picker: Picker,
    /// ワーカーが落ちたために、もう一度渡し直すタスク。新しい入力より先に渡します
    retry: VecDeque<Pending>,
    events: mpsc::Sender<Event>,
    progress: ProgressBar,
    stdout: tokio::io::Stdout,
    draining: bool,
    output_broken: bool,
    stats: Stats,
}

#[derive(Debug, Default)]
struct Stats {
    completed: u64,
    failed: u64,
    invalid: u64,
    interrupted: bool,
    output_broken: bool,
}

impl Dispatcher {
    // ANCHOR: run
    /// ディスパッチャの本体。状態はすべてこのループだけが持ち、ロックは使いません。
    /// 入力、ワーカーからの知らせ、時間切れ、Ctrl-Cのどれかを待っては1つずつ処理します。
    async fn run(
        &mut self,
        mut input: mpsc::Receiver<Result<Task, String>>,
        events: &mut mpsc::Receiver<Event>,
        mut ctrl_c: mpsc::Receiver<()>,
    ) {
        let mut input_open = true;
        loop {
            if self.output_broken && !self.draining {
                input_open = false;
                self.drain(&mut input).await;
            }
            // 落ちたワーカーから戻ったタスクを、新しい入力より先に渡します
            while !self.retry.is_empty() {
                let Some(worker) = self.pick() else { break };
                let pending = self.retry.pop_front().expect("retry is not empty");
                self.dispatch(worker, pending);
            }
            let idle = self.slots.iter().all(|s| s.in_flight.is_empty());
            if !input_open && self.retry.is_empty() && idle {
                break; // すべてのタスクを報告し終えました
            }
            // 渡せるワーカーがないあいだは入力を読みません。チャネルが埋まれば、
            // 入力を読むスレッドも止まります（背圧）
            let target = if input_open && self.retry.is_empty() {
                self.pick()
            } else {
                None
            };
            let wake = self.next_deadline();
            tokio::select! {
                item = input.recv(), if target.is_some() => match item {
                    Some(Ok(task)) => {
                        let worker = target.expect("checked by the branch condition");
                        self.dispatch(worker, Pending::new(task));
                    }
                    Some(Err(message)) => {
                        warn!("入力を飛ばします: {message}");
                        self.stats.invalid += 1;
                    }
                    None => input_open = false,
                },
                Some(event) = events.recv() => self.on_event(event).await,
                () = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                    self.on_deadline().await;
                }
                Some(()) = ctrl_c.recv() => {
                    if self.draining {
                        self.abort().await;
                    } else {
                        input_open = false;
                        self.stats.interrupted = true;
                        self.drain(&mut input).await;
                    }
                }
            }
        }
    }
    // ANCHOR_END: run

    fn pick(&mut self) -> Option<usize> {
        let loads: Vec<Option<usize>> = self.slots.iter().map(Slot::load).collect();
        self.picker.pick(&loads, self.limits.in_flight)
    }

    fn dispatch(&mut self, worker: usize, mut pending: Pending) {
        let slot = &mut self.slots[worker];
        let SlotState::Up { tasks, .. } = &slot.state else {
            unreachable!("the picker only picks running workers");
        };
        // 送れなければ見張りのタスクはもう終わっています。タスクは`in_flight`に置いておけば、
        // まもなく届く`Down`の知らせで渡し直されます
        let _ = tasks.send(pending.task.clone());
        pending.attempts += 1;
        if slot.in_flight.is_empty() {
            slot.busy_since = Some(Instant::now());
        }
        slot.in_flight.push_back(pending);
        self.picker.dispatched(worker, self.slots.len());
    }

    fn start(&mut self, worker: usize) -> io::Result<()> {
        let child = spawn_worker()?;
        let pid = child.id().unwrap_or_default();
        let slot = &mut self.slots[worker];
        slot.generation += 1;
        let (tasks, rx) = mpsc::unbounded_channel();
        let kill = CancellationToken::new();
        let events = self.events.clone();
        tokio::spawn(supervise(
            child,
            worker,
            slot.generation,
            rx,
            kill.clone(),
            events,
        ));
        slot.state = SlotState::Up { tasks, kill };
        info!(worker, pid, "ワーカーを起動しました");
        Ok(())
    }

    // ANCHOR: events
    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Reply {
                slot,
                generation,
                reply,
            } if self.slots[slot].generation == generation => {
                self.on_reply(slot, reply).await;
            }
            Event::Down {
                slot,
                generation,
                reason,
            } if self.slots[slot].generation == generation => {
                self.take_down(slot, reason).await;
            }
            stale => debug!(?stale, "止めたプロセスからの知らせを無視します"),
        }
    }

    async fn on_reply(&mut self, worker: usize, reply: Reply) {
        let slot = &mut self.slots[worker];
        let Some(at) = slot.in_flight.iter().position(|p| p.task.id == reply.id) else {
            let reason = format!("渡していないタスク{}の返事が来ました", reply.id);
            return self.take_down(worker, reason).await;
        };
        let pending = slot
            .in_flight
            .remove(at)
            .expect("the position was just found");
        // 次のタスクの実行が、いま始まりました
        slot.busy_since = (!slot.in_flight.is_empty()).then(Instant::now);
        slot.failures_in_a_row = 0;
        match reply.answer {
            Answer::Value(value) => {
                slot.completed += 1;
                self.report_ok(pending, value, worker).await;
            }
            // タスク自身の誤り（オーバーフローなど）は、何度やっても同じなので再送しません
            Answer::Error(error) => self.report_failed(pending, error).await,
        }
    }

    /// ワーカーが落ちた、または落としたときの後始末です。実行中だった先頭のタスクを疑い、
    /// 後ろで待っていたタスクは無実として、そのまま渡し直します。
    async fn take_down(&mut self, worker: usize, reason: String) {
        let draining = self.draining;
        let slot = &mut self.slots[worker];
        if let SlotState::Up { kill, .. } = &slot.state {
            kill.cancel(); // もう終わっているプロセスなら何も起きません
        }
        slot.generation += 1; // このプロセスからの知らせは、これ以降無視します
        slot.failures_in_a_row += 1;
        slot.busy_since = None;
        slot.state = if draining {
            warn!(worker, "{reason}");
            SlotState::Stopped
        } else {
            let wait = backoff(slot.failures_in_a_row);
            warn!(worker, ?wait, "{reason}。ワーカーを再起動します");
            SlotState::Restarting {
                at: Instant::now() + wait,
            }
        };
        let mut in_flight = std::mem::take(&mut slot.in_flight);
        if draining {
            let error = format!("中断したので渡し直しません（{reason}）");
            for pending in in_flight {
                self.report_failed(pending, error.clone()).await;
            }
            return;
        }
        let suspect = in_flight.pop_front();
        self.retry.extend(in_flight);
        if let Some(mut suspect) = suspect {
            suspect.failures += 1;
            if suspect.failures >= self.limits.max_attempts {
                // 毒のタスク: ワーカーを何度も落とすタスクは、諦めて失敗として報告します
                let n = suspect.failures;
                let error =
                    format!("このタスクでワーカーが{n}回失敗したので諦めました（最後: {reason}）");
                warn!(id = suspect.task.id, "{error}");
                self.report_failed(suspect, error).await;
            } else {
                self.retry.push_back(suspect);
            }
        }
    }
    // ANCHOR_END: events

    // ANCHOR: deadline
    /// 次に起きるべき時刻: 実行中のタスクの締め切りか、ワーカーの再起動の時刻のうち早いほう。
    fn next_deadline(&self) -> Option<Instant> {
        let timeout = self.limits.timeout;
        let deadlines = self.slots.iter().filter_map(|slot| match slot.state {
            SlotState::Up { .. } => slot.busy_since.map(|t| t + timeout),
            SlotState::Restarting { at } => Some(at),
            SlotState::Stopped => None,
        });
        deadlines.min()
    }

    async fn on_deadline(&mut self) {
        let now = Instant::now();
        for worker in 0..self.slots.len() {
            let slot = &self.slots[worker];
            match slot.state {
                SlotState::Up { .. }
                    if slot
                        .busy_since
                        .is_some_and(|t| t + self.limits.timeout <= now) =>
                {
                    let ms = self.limits.timeout.as_millis();
                    self.take_down(worker, format!("{ms}ミリ秒以内に応答がありません"))
                        .await;
                }
                SlotState::Restarting { at } if at <= now => match self.start(worker) {
                    Ok(()) => self.slots[worker].restarts += 1,
                    Err(e) => {
                        let slot = &mut self.slots[worker];
                        slot.failures_in_a_row += 1;
                        let wait = backoff(slot.failures_in_a_row);
                        error!(worker, ?wait, "ワーカーを起動できません: {e}");
                        slot.state = SlotState::Restarting { at: now + wait };
                    }
                },
                _ => {}
            }
        }
    }
    // ANCHOR_END: deadline

    // ANCHOR: drain
    /// 1回目のCtrl-C: 新しいタスクを止め、まだ渡していないタスクは中断として報告します。
    /// 実行中のタスクは終わるのを待ちます（時間切れや異常終了なら、渡し直さずに失敗として報告します）。
    async fn drain(&mut self, input: &mut mpsc::Receiver<Result<Task, String>>) {
        info!("中断します。実行中のタスクを待っています（もう一度Ctrl-Cで強制終了）");
        self.draining = true;
        input.close(); // 入力を読むスレッドは、次に送ろうとしたときに止まります
        let mut waiting: Vec<Pending> = self.retry.drain(..).collect();
        while let Ok(item) = input.try_recv() {
            if let Ok(task) = item {
                waiting.push(Pending::new(task));
            }
        }
        let n = waiting.len();
        info!("まだ渡していなかった{n}件を、中断として報告します");
        for pending in waiting {
            self.report_failed(pending, "中断したので実行しませんでした".into())
                .await;
        }
        for slot in &mut self.slots {
            if let SlotState::Restarting { .. } = slot.state {
                slot.state = SlotState::Stopped;
            }
        }
    }

    /// 2回目のCtrl-C: 実行中のタスクも待たずに、すべてのワーカーを止めます。
    async fn abort(&mut self) {
        warn!("強制終了します");
        for worker in 0..self.slots.len() {
            if let SlotState::Up { .. } = self.slots[worker].state {
                self.take_down(worker, "強制終了しました".into()).await;
            }
        }
    }

    /// 最後の片付け。ワーカーへの送信側をドロップすると標準入力が閉じ、ワーカーは自分で終わります。
    /// 見張りのタスクがすべて終わる（＝すべての子プロセスを回収した）と、`events`が閉じます。
    async fn shutdown(mut self, mut events: mpsc::Receiver<Event>) -> (Stats, Vec<(u64, u32)>) {
        for slot in &mut self.slots {
            slot.state = SlotState::Stopped;
        }
        let workers = self
            .slots
            .iter()
            .map(|s| (s.completed, s.restarts))
            .collect();
        let _ = self.stdout.flush().await;
        drop(self.events);
        let all_reaped = async { while events.recv().await.is_some() {} };
        if tokio::time::timeout(EXIT_GRACE * 2, all_reaped)
            .await
            .is_err()
        {
            error!("終了しないワーカーがあります");
        }
        (self.stats, workers)
    }
    // ANCHOR_END: drain

    // ANCHOR: report
    /// 結果を1行書きます。`Pending`を値で受け取って消費するので、同じタスクを2回報告する
    /// コードはコンパイルできません（ムーブ済みの値は使えません）。
    async fn report_ok(&mut self, pending: Pending, value: u64, worker: usize) {
        self.stats.completed += 1;
        let Pending { task, attempts, .. } = pending;
        self.write(Outcome::Ok {
            id: task.id,
            value,
            worker,
            attempts,
        })
        .await;
    }

    async fn report_failed(&mut self, pending: Pending, error: String) {
        self.stats.failed += 1;
        debug!(id = pending.task.id, "タスクが失敗しました: {error}");
        let Pending { task, attempts, .. } = pending;
        self.write(Outcome::Failed {
            id: task.id,
            error,
            attempts,
        })
        .await;
    }

    async fn write(&mut self, outcome: Outcome) {
        let mut line = serde_json::to_vec(&outcome).expect("an Outcome always serializes");
        line.push(b'\n');
        self.progress.inc(1);
        if let Err(e) = self.stdout.write_all(&line).await
            && !self.output_broken
        {
            // 読み手がいなくなりました（`| head`など）。続けても結果を渡せないので、中断します
            error!("結果を書けません: {e}");
            self.output_broken = true;
            self.stats.output_broken = true;
        }
    }
    // ANCHOR_END: report
}

// ANCHOR: input
/// 入力（JSON Lines）を読むスレッドを起動します。チャネルが満杯なら`blocking_send`で待つので、
/// ワーカーが忙しいあいだは入力も読み進めません（背圧）。誤った行は理由を付けて送ります。
fn spawn_reader(mut source: Box<dyn BufRead + Send>, tx: mpsc::Sender<Result<Task, String>>) {
    thread::spawn(move || {
        let mut seen = HashSet::new();
        for number in 1.. {
            let item = match read_line_blocking(&mut source) {
                Ok(None) => break,
                Ok(Some(line)) if line.trim().is_empty() => continue,
                Ok(Some(line)) => match serde_json::from_str::<Task>(&line) {
                    Ok(task) if !seen.insert(task.id) => {
                        Err(format!("{number}行目: id {}が重複しています", task.id))
                    }
                    Ok(task) => Ok(task),
                    Err(e) => Err(format!("{number}行目: {e}")),
                },
                Err(e) => {
                    // 読めない入力の続きは信用できないので、ここで読むのをやめます
                    let _ = tx.blocking_send(Err(format!("{number}行目: {e}")));
                    break;
                }
            };
            if tx.blocking_send(item).is_err() {
                break; // ディスパッチャが入力を閉じました（中断）
            }
        }
    });
}
// ANCHOR_END: input

// ANCHOR: demo
/// `--demo`で流すタスク。CPUとスリープの仕事に、わざと失敗するタスクを3つ混ぜてあります。
const DEMO: &str = r#"{"id":1,"cpu":1000000}
{"id":2,"sleep_ms":50}
{"id":3,"cpu":2000000}
{"id":4,"sleep_ms":120}
{"id":5,"fault":"crash"}
{"id":6,"cpu":500000}
{"id":7,"sleep_ms":30}
{"id":8,"cpu":5000000}
{"id":9,"fault":"garbage"}
{"id":10,"sleep_ms":80}
"#;
// ANCHOR_END: demo

// ANCHOR: cli
#[derive(Parser)]
#[command(
    version,
    about = "タスク（JSON Lines）を複数のワーカープロセスに分散して実行します"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Mode>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Mode {
    /// ワーカーとして動きます（ディスパッチャが内部で使います）
    #[command(hide = true)]
    Worker,
}

#[derive(Args)]
struct RunArgs {
    /// タスクのファイル（JSON Lines）。省略するか`-`なら標準入力から読みます
    file: Option<PathBuf>,
    /// 入力の代わりに、組み込みのサンプルタスクを流します
    #[arg(long, conflicts_with = "file")]
    demo: bool,
    /// ワーカープロセスの数
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: u32,
    /// 分散の方法
    #[arg(short, long, value_enum, default_value_t = Strategy::LeastOutstanding)]
    strategy: Strategy,
    /// 1つのワーカーに同時に渡しておけるタスクの数
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    in_flight: u32,
    /// 1つのタスクの時間制限（ミリ秒）。過ぎたらワーカーを殺して再起動します
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: u64,
    /// ワーカーを落としたタスクを何回まで試すか。超えたら失敗として報告します
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    max_attempts: u32,
}
// ANCHOR_END: cli

// ANCHOR: main
fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Mode::Worker) = cli.command {
        return match worker_main() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("balancer worker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let progress = progress_bar();
    init_logging(progress.clone());
    // ディスパッチャの仕事は待つことだけなので、スレッド1つのランタイムで足ります
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            error!("ランタイムを作れません: {e}");
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    let result = runtime.block_on(dispatch(cli.run, progress.clone()));
    progress.finish_and_clear();
    match result {
        Ok((stats, workers)) => {
            print_summary(&stats, &workers, started.elapsed());
            if stats.interrupted {
                ExitCode::from(130) // Ctrl-Cで終わったプロセスの慣習的な終了コード
            } else if stats.output_broken {
                ExitCode::FAILURE
            } else if stats.invalid > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS // 失敗したタスクがあっても、それは出力に書いた結果の一部です
            }
        }
        Err(e) => {
            error!("{e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(
    args: RunArgs,
    progress: ProgressBar,
) -> anyhow::Result<(Stats, Vec<(u64, u32)>)> {
    let source: Box<dyn BufRead + Send> = match &args.file {
        _ if args.demo => Box::new(io::Cursor::new(DEMO)),
        Some(path) if path.as_os_str() != "-" => {
            let file =
                File::open(path).with_context(|| format!("{}を開けません", path.display()))?;
            Box::new(io::BufReader::new(file))
        }
        _ => Box::new(io::BufReader::new(io::stdin())),
    };
    let (input_tx, input) = mpsc::channel(16);
    spawn_reader(source, input_tx);

    let (ctrl_c_tx, ctrl_c) = mpsc::channel(1);
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if ctrl_c_tx.send(()).await.is_err() {
                break;
            }
        }
    });

    let (events_tx, mut events) = mpsc::channel(64);
    let workers = args.workers as usize;
    let mut dispatcher = Dispatcher {
        limits: Limits {
            in_flight: args.in_flight as usize,
            timeout: Duration::from_millis(args.timeout_ms),
            max_attempts: args.max_attempts,
        },
        slots: (0..workers).map(|_| Slot::new()).collect(),
        picker: Picker {
            strategy: args.strategy,
            next: 0,
            rng: fastrand::Rng::new(),
        },
        retry: VecDeque::new(),
        events: events_tx,
        progress,
        stdout: tokio::io::stdout(),
        draining: false,
        output_broken: false,
        stats: Stats::default(),
    };
    for worker in 0..workers {
        dispatcher
            .start(worker)
            .context("ワーカーを起動できません")?;
    }
    info!(workers, strategy = ?args.strategy, "タスクの分散を始めます");
    dispatcher.run(input, &mut events, ctrl_c).await;
    Ok(dispatcher.shutdown(events).await)
}
// ANCHOR_END: main

// ANCHOR: output
/// 端末に出すときだけ進捗を表示します。パイプやファイルへ出すときは隠します。
fn progress_bar() -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let progress = ProgressBar::new_spinner();
    let style = ProgressStyle::with_template("{spinner} {elapsed} 報告したタスク {pos}件")
        .expect("the template is valid");
    progress.set_style(style);
    progress.enable_steady_tick(Duration::from_millis(100));
    progress
}

/// ログは標準エラー出力へ（標準出力は結果のJSON Lines専用です）。`RUST_LOG=debug`などで詳しくできます。
fn init_logging(progress: ProgressBar) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(io::stderr().is_terminal())
        // 進捗表示と同じ端末に書くので、1行書くあいだだけ進捗表示を消します
        .with_writer(move || ProgressWriter(progress.clone()))
        .init();
}

struct ProgressWriter(ProgressBar);

impl Write for ProgressWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.suspend(|| io::stderr().write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

fn print_summary(stats: &Stats, workers: &[(u64, u32)], elapsed: Duration) {
    let Stats {
        completed,
        failed,
        invalid,
        interrupted,
        ..
    } = stats;
    eprintln!("完了 {completed}件、失敗 {failed}件、誤った入力 {invalid}行（{elapsed:.2?}）");
    for (i, (tasks, restarts)) in workers.iter().enumerate() {
        eprintln!("  ワーカー{i}: 完了 {tasks}件、再起動 {restarts}回");
    }
    if *interrupted {
        eprintln!("中断したため、読んでいない入力が残っている可能性があります");
    }
}
// ANCHOR_END: output

#[cfg(test)]
mod tests {
    use super::*;

    fn picker(strategy: Strategy) -> Picker {
        Picker {
            strategy,
            next: 0,
            rng: fastrand::Rng::with_seed(7),
        }
    }

    #[test]
    fn round_robin_takes_turns_and_waits_for_a_full_worker() {
        let mut p = picker(Strategy::RoundRobin);
        let loads = [Some(0), Some(0), Some(0)];
        let mut order = Vec::new();
        for _ in 0..4 {
            let i = p.pick(&loads, 2).unwrap();
            p.dispatched(i, 3);
            order.push(i);
        }
        assert_eq!(order, [0, 1, 2, 0]);
        // 次の番（1）が満杯なら、ほかが空いていても待ちます
        assert_eq!(p.pick(&[Some(0), Some(2), Some(0)], 2), None);
        // 止まっているワーカーは飛ばします
        assert_eq!(p.pick(&[Some(0), None, Some(0)], 2), Some(2));
    }

    #[test]
    fn least_outstanding_picks_the_emptiest_running_worker() {
        let mut p = picker(Strategy::LeastOutstanding);
        assert_eq!(p.pick(&[Some(3), Some(1), None, Some(2)], 4), Some(1));
        assert_eq!(p.pick(&[Some(4), None], 4), None);
    }

    #[test]
    fn power_of_two_never_picks_a_full_or_stopped_worker() {
        let mut p = picker(Strategy::PowerOfTwo);
        let loads = [Some(4), Some(1), None, Some(3), Some(0)];
        for _ in 0..200 {
            let i = p.pick(&loads, 4).unwrap();
            assert!([1, 3, 4].contains(&i), "{i}");
        }
        assert_eq!(p.pick(&[Some(4), None], 4), None);
        assert_eq!(p.pick(&[Some(4), Some(2)], 4), Some(1));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let ms: Vec<u128> = (1..=8).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn lines_are_bounded() {
        let mut ok = io::Cursor::new("a\nb".as_bytes());
        assert_eq!(read_line_blocking(&mut ok).unwrap().as_deref(), Some("a"));
        assert_eq!(read_line_blocking(&mut ok).unwrap().as_deref(), Some("b"));
        assert_eq!(read_line_blocking(&mut ok).unwrap(), None);
        let long = vec![b'x'; MAX_LINE + 10];
        let err = read_line_blocking(&mut io::Cursor::new(long)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn the_wire_format_is_the_documented_one() {
        let task: Task = serde_json::from_str(r#"{"id":3,"fault":"crash"}"#).unwrap();
        assert!(matches!(task.work, Work::Fault(Fault::Crash)));
        let task: Task = serde_json::from_str(r#"{"id":2,"sleep_ms":50}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&task).unwrap(),
            r#"{"id":2,"sleep_ms":50}"#
        );
        let reply = Reply {
            id: 1,
            answer: Answer::Value(385),
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"id":1,"value":385}"#
        );
        let ok = Outcome::Ok {
            id: 1,
            value: 385,
            worker: 0,
            attempts: 1,
        };
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"status":"ok","id":1,"value":385,"worker":0,"attempts":1}"#
        );
    }

    #[test]
    fn sum_of_squares_checks_overflow() {
        assert_eq!(sum_of_squares(10), Some(385));
        assert_eq!(sum_of_squares(0), Some(0));
        assert_eq!(sum_of_squares(u64::MAX), None);
    }
}

//! ディスパッチャ: タスクをワーカーに渡し、返事と障害を受け取り、結果をちょうど1回ずつ報告します。

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::protocol::{Answer, MAX_LINE, Outcome, Reply, Task, read_line};
use crate::strategy::{Picker, Strategy};
use crate::worker::{Spawn, Worker};

/// 実行の設定（コマンドライン引数から）。
#[derive(Debug, Clone)]
pub struct Config {
    pub workers: usize,
    pub strategy: Strategy,
    /// 1つのワーカーに同時に渡しておけるタスクの数
    pub in_flight: usize,
    /// 1つのタスクの時間制限
    pub timeout: Duration,
    /// ワーカーを落としたタスクを何回まで試すか
    pub max_attempts: u32,
}

// ANCHOR: signal
/// ディスパッチャに「片付けて終われ」と伝えるシグナル。どれも同じように扱います。
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ctrl-C（SIGINT）
    Interrupt,
    /// `kill`や`docker stop`（SIGTERM）
    Terminate,
    /// 端末が閉じた（SIGHUP）
    Hangup,
}

impl Signal {
    /// Unixのシグナルの番号。終了ステータスは慣習どおり128＋この番号にします。
    pub fn number(self) -> u8 {
        match self {
            Signal::Hangup => 1,
            Signal::Interrupt => 2,
            Signal::Terminate => 15,
        }
    }
}

/// SIGINT・SIGTERM・SIGHUPを受け取るたびに、チャネルへ送ります（ランタイムの中で呼びます）。
pub fn listen_for_signals() -> io::Result<mpsc::Receiver<Signal>> {
    let (tx, rx) = mpsc::channel(4);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let kinds = [
            (SignalKind::interrupt(), Signal::Interrupt),
            (SignalKind::terminate(), Signal::Terminate),
            (SignalKind::hangup(), Signal::Hangup),
        ];
        for (kind, name) in kinds {
            let mut stream = signal(kind)?;
            let tx = tx.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send(name).await.is_err() {
                        break;
                    }
                }
            });
        }
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(Signal::Interrupt).await.is_err() {
                break;
            }
        }
    });
    Ok(rx)
}
// ANCHOR_END: signal

// ANCHOR: supervise
/// 見張りのタスクからディスパッチャへの知らせ。`generation`はどのプロセスからの知らせかを表します。
#[derive(Debug)]
enum Event {
    Reply {
        slot: usize,
        generation: u64,
        id: u64,
        answer: Answer,
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

/// 1つのワーカーを受け持つタスクです。タスクを標準入力へ書き、返事を読んで`events`へ送り、
/// プロセスが終わったら（または`kill`で止められたら）終了を待って回収します。
async fn supervise(
    worker: Worker,
    slot: usize,
    generation: u64,
    mut tasks: mpsc::UnboundedReceiver<Task>,
    kill: CancellationToken,
    events: mpsc::Sender<Event>,
) {
    let Worker {
        mut stdin,
        stdout,
        stderr,
        mut process,
        ..
    } = worker;
    // 書き込みは別のタスクで行います。応答しないワーカーのパイプが詰まっても、
    // 読み取りと`kill`は止まりません
    let writer = tokio::spawn(async move {
        while let Some(task) = tasks.recv().await {
            let line = format!("{}\n", task.line);
            if stdin.write_all(line.as_bytes()).await.is_err() {
                break; // ワーカーが終わっています。読み取り側がEOFで気づきます
            }
        }
        // ここで`stdin`がドロップされ、パイプが閉じます。ワーカーにとっての入力の終わりです
    });
    let stderr = stderr.map(|stderr| tokio::spawn(relay_stderr(stderr, slot)));

    let mut stdout = BufReader::new(stdout);
    let stop = loop {
        tokio::select! {
            () = kill.cancelled() => break Stop::Killed,
            line = read_line(&mut stdout) => match line {
                Ok(Some(line)) => match Reply::parse(&line) {
                    Ok((id, answer)) => {
                        let event = Event::Reply { slot, generation, id, answer };
                        let _ = events.send(event).await;
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
        process.kill(); // 止めろと言われた、または約束を破ったプロセスは殺します
    }
    // 出力を閉じたのにまだ生きているプロセスも、少し待ってから殺します。どの道でも必ず回収します
    let status = match tokio::time::timeout(EXIT_GRACE, process.wait()).await {
        Ok(status) => status,
        Err(_) => {
            process.kill();
            process.wait().await
        }
    };
    if let Some(stderr) = stderr {
        // 最後に書かれたエラーメッセージまでログに出してから終わります
        if tokio::time::timeout(EXIT_GRACE, stderr).await.is_err() {
            debug!(slot, "ワーカーの標準エラー出力がまだ閉じていません");
        }
    }
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

/// ワーカーの標準エラー出力を1行ずつ、ワーカーの番号を付けてログへ流します。
/// ログは進捗表示をいったん消してから書くので、表示が崩れません。
async fn relay_stderr(stderr: Box<dyn AsyncRead + Send + Unpin>, slot: usize) {
    let mut stderr = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // 長すぎる行は`MAX_LINE`バイトずつに分けて出します
        let mut limited = (&mut stderr).take(MAX_LINE as u64);
        match limited.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                warn!("[ワーカー{slot}] {}", line.trim_end());
            }
        }
    }
}
// ANCHOR_END: supervise

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
    /// このタスクを実行中にワーカーが落ちた（または時間切れになった）回数
    failures: u32,
    /// ほかのタスクの巻き添えで、実行されないまま渡し直された回数
    requeued: u32,
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
            failures: 0,
            requeued: 0,
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

// ANCHOR: summary
/// 実行の結果のまとめ。終了ステータスもここから決めます。
#[derive(Debug, Default)]
pub struct Summary {
    pub completed: u64,
    pub failed: u64,
    pub invalid: u64,
    /// ほかのタスクの巻き添えで渡し直した回数の合計
    pub requeued: u64,
    /// 中断させたシグナル
    pub interrupted: Option<Signal>,
    pub output_broken: bool,
    /// ワーカーの席ごとの（完了したタスク、再起動の回数）
    pub workers: Vec<(u64, u32)>,
}

impl Summary {
    /// GNU parallelにならった終了ステータス: 0はすべて完了、1〜100は失敗したタスク
    /// （と誤った入力の行）の数、101は100件より多くが失敗。シグナルで中断したら128＋番号、
    /// 結果を書けなくなったら255です。
    pub fn exit_code(&self) -> u8 {
        if let Some(signal) = self.interrupted {
            return 128 + signal.number();
        }
        if self.output_broken {
            return 255;
        }
        let failed = self.failed.saturating_add(self.invalid);
        u8::try_from(failed.min(101)).expect("at most 101")
    }
}
// ANCHOR_END: summary

/// ディスパッチャの状態。すべてを`run`のループだけが読み書きするので、ロックは要りません。
pub struct Dispatcher {
    config: Config,
    spawner: Box<dyn Spawn>,
    slots: Vec<Slot>,
    picker: Picker,
    /// ワーカーが落ちたために、もう一度渡し直すタスク。新しい入力より先に渡します
    retry: VecDeque<Pending>,
    events: mpsc::Sender<Event>,
    progress: ProgressBar,
    output: Box<dyn AsyncWrite + Send + Unpin>,
    draining: bool,
    summary: Summary,
}

/// 入力を最後まで（またはシグナルで中断するまで）処理し、すべてのワーカーを回収して、まとめを返します。
pub async fn dispatch(
    config: Config,
    spawner: Box<dyn Spawn>,
    input: mpsc::Receiver<Result<Task, String>>,
    signals: mpsc::Receiver<Signal>,
    output: Box<dyn AsyncWrite + Send + Unpin>,
    progress: ProgressBar,
) -> io::Result<Summary> {
    let (mut dispatcher, mut events) = Dispatcher::new(config, spawner, output, progress);
    for worker in 0..dispatcher.slots.len() {
        dispatcher.start(worker)?;
    }
    let config = &dispatcher.config;
    info!(workers = config.workers, strategy = ?config.strategy, "タスクの分散を始めます");
    dispatcher.run(input, &mut events, signals).await;
    Ok(dispatcher.shutdown(events).await)
}

impl Dispatcher {
    fn new(
        config: Config,
        spawner: Box<dyn Spawn>,
        output: Box<dyn AsyncWrite + Send + Unpin>,
        progress: ProgressBar,
    ) -> (Dispatcher, mpsc::Receiver<Event>) {
        let (events, events_rx) = mpsc::channel(64);
        let dispatcher = Dispatcher {
            slots: (0..config.workers).map(|_| Slot::new()).collect(),
            picker: Picker::new(config.strategy, fastrand::Rng::new()),
            config,
            spawner,
            retry: VecDeque::new(),
            events,
            progress,
            output,
            draining: false,
            summary: Summary::default(),
        };
        (dispatcher, events_rx)
    }

    // ANCHOR: run
    /// ディスパッチャの本体。状態はすべてこのループだけが持ち、ロックは使いません。
    /// ワーカーからの知らせ、シグナル、時間切れ、入力のどれかを待っては1つずつ処理します。
    async fn run(
        &mut self,
        mut input: mpsc::Receiver<Result<Task, String>>,
        events: &mut mpsc::Receiver<Event>,
        mut signals: mpsc::Receiver<Signal>,
    ) {
        let mut input_open = true;
        loop {
            if self.summary.output_broken && !self.draining {
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
                // 上から順に調べます。届いている返事を先に受け取らないと、締め切りの枝が選ばれて
                // 終わったタスクのワーカーを殺し、同じタスクをもう一度実行してしまいます
                biased;
                Some(event) = events.recv() => self.on_event(event).await,
                Some(signal) = signals.recv() => {
                    if self.draining {
                        self.abort().await;
                    } else {
                        input_open = false;
                        self.summary.interrupted = Some(signal);
                        self.drain(&mut input).await;
                    }
                }
                () = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                    self.on_deadline().await;
                }
                item = input.recv(), if target.is_some() => match item {
                    Some(Ok(task)) => {
                        let worker = target.expect("checked by the branch condition");
                        self.dispatch(worker, Pending::new(task));
                    }
                    Some(Err(message)) => {
                        warn!("入力を飛ばします: {message}");
                        self.summary.invalid += 1;
                    }
                    None => input_open = false,
                },
            }
        }
    }
    // ANCHOR_END: run

    fn pick(&mut self) -> Option<usize> {
        let loads: Vec<Option<usize>> = self.slots.iter().map(Slot::load).collect();
        self.picker.pick(&loads, self.config.in_flight)
    }

    fn dispatch(&mut self, worker: usize, pending: Pending) {
        let slot = &mut self.slots[worker];
        let SlotState::Up { tasks, .. } = &slot.state else {
            unreachable!("the picker only picks running workers");
        };
        // 送れなければ見張りのタスクはもう終わっています。タスクは`in_flight`に置いておけば、
        // まもなく届く`Down`の知らせで渡し直されます
        let _ = tasks.send(pending.task.clone());
        if slot.in_flight.is_empty() {
            slot.busy_since = Some(Instant::now());
        }
        slot.in_flight.push_back(pending);
        self.picker.dispatched(worker, self.slots.len());
    }

    fn start(&mut self, worker: usize) -> io::Result<()> {
        let process = self.spawner.spawn()?;
        let pid = process.pid;
        let slot = &mut self.slots[worker];
        slot.generation += 1;
        let (tasks, rx) = mpsc::unbounded_channel();
        let kill = CancellationToken::new();
        let events = self.events.clone();
        tokio::spawn(supervise(
            process,
            worker,
            slot.generation,
            rx,
            kill.clone(),
            events,
        ));
        slot.state = SlotState::Up { tasks, kill };
        match pid {
            Some(pid) => info!(worker, pid, "ワーカーを起動しました"),
            None => info!(worker, "ワーカーを起動しました"),
        }
        Ok(())
    }

    // ANCHOR: events
    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Reply {
                slot,
                generation,
                id,
                answer,
            } if self.slots[slot].generation == generation => {
                self.on_reply(slot, id, answer).await;
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

    async fn on_reply(&mut self, worker: usize, id: u64, answer: Answer) {
        let slot = &mut self.slots[worker];
        let Some(at) = slot.in_flight.iter().position(|p| p.task.id == id) else {
            let reason = format!("渡していないタスク{id}の返事が来ました");
            return self.take_down(worker, reason).await;
        };
        let pending = slot
            .in_flight
            .remove(at)
            .expect("the position was just found");
        // 次のタスクの実行が、いま始まりました
        slot.busy_since = (!slot.in_flight.is_empty()).then(Instant::now);
        slot.failures_in_a_row = 0;
        match answer {
            Answer::Value(value) => {
                slot.completed += 1;
                self.report_ok(pending, value, worker).await;
            }
            // タスク自身の誤り（オーバーフローなど）は、何度やっても同じなので渡し直しません
            Answer::Error(error) => self.report_failed(pending, 1, error).await,
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
        let suspect = in_flight.pop_front();
        // 後ろで待っていたタスクは、まだ実行されていません。失敗には数えずに、疑わしいタスクより先に渡し直します
        for mut innocent in in_flight {
            if draining {
                let error = format!("中断したので実行しませんでした（{reason}）");
                self.report_failed(innocent, 0, error).await;
            } else {
                innocent.requeued += 1;
                self.summary.requeued += 1;
                self.retry.push_back(innocent);
            }
        }
        if let Some(mut suspect) = suspect {
            suspect.failures += 1;
            if draining || suspect.failures >= self.config.max_attempts {
                // 毒のタスク: ワーカーを何度も落とすタスクは、あきらめて失敗として報告します
                let n = suspect.failures;
                let error = if draining {
                    format!("中断したので渡し直しません（{reason}）")
                } else {
                    format!(
                        "このタスクでワーカーが{n}回失敗したのであきらめました（最後: {reason}）"
                    )
                };
                warn!(id = suspect.task.id, "{error}");
                self.report_failed(suspect, 0, error).await;
            } else {
                self.retry.push_back(suspect);
            }
        }
    }
    // ANCHOR_END: events

    // ANCHOR: deadline
    /// 次に起きるべき時刻: 実行中のタスクの締め切りか、ワーカーの再起動の時刻のうち早いほう。
    fn next_deadline(&self) -> Option<Instant> {
        let timeout = self.config.timeout;
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
                        .is_some_and(|t| t + self.config.timeout <= now) =>
                {
                    let limit = humantime::format_duration(self.config.timeout);
                    self.take_down(worker, format!("{limit}以内に応答がありません"))
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
    /// 1回目のシグナル: 新しいタスクを止め、まだ渡していないタスクは中断として報告します。
    /// 実行中のタスクは終わるのを待ちます（時間切れや異常終了なら、渡し直さずに失敗として報告します）。
    async fn drain(&mut self, input: &mut mpsc::Receiver<Result<Task, String>>) {
        info!("中断します。実行中のタスクを待っています（もう一度シグナルを送ると強制終了）");
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
            self.report_failed(pending, 0, "中断したので実行しませんでした".into())
                .await;
        }
        for slot in &mut self.slots {
            if let SlotState::Restarting { .. } = slot.state {
                slot.state = SlotState::Stopped;
            }
        }
    }

    /// 2回目のシグナル: 実行中のタスクも待たずに、すべてのワーカーを止めます。
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
    async fn shutdown(mut self, mut events: mpsc::Receiver<Event>) -> Summary {
        for slot in &mut self.slots {
            slot.state = SlotState::Stopped;
        }
        self.summary.workers = self
            .slots
            .iter()
            .map(|s| (s.completed, s.restarts))
            .collect();
        let _ = self.output.flush().await;
        drop(self.events);
        let all_reaped = async { while events.recv().await.is_some() {} };
        if tokio::time::timeout(EXIT_GRACE * 2, all_reaped)
            .await
            .is_err()
        {
            error!("終了しないワーカーがあります");
        }
        self.summary
    }
    // ANCHOR_END: drain

    // ANCHOR: report
    /// 結果を1行書きます。`Pending`を値で受け取って消費するので、同じタスクを2回報告する
    /// コードはコンパイルできません（ムーブ済みの値は使えません）。
    async fn report_ok(
        &mut self,
        pending: Pending,
        value: Box<serde_json::value::RawValue>,
        worker: usize,
    ) {
        self.summary.completed += 1;
        let Pending {
            task,
            failures,
            requeued,
        } = pending;
        self.write(Outcome::Ok {
            id: task.id,
            value,
            worker,
            attempts: failures + 1,
            requeued,
        })
        .await;
    }

    /// 失敗として報告します。`ran`は、落ちたのではなく最後まで実行された回数（0か1）です。
    async fn report_failed(&mut self, pending: Pending, ran: u32, error: String) {
        self.summary.failed += 1;
        debug!(id = pending.task.id, "タスクが失敗しました: {error}");
        let Pending {
            task,
            failures,
            requeued,
        } = pending;
        self.write(Outcome::Failed {
            id: task.id,
            error,
            attempts: failures + ran,
            requeued,
        })
        .await;
    }

    async fn write(&mut self, outcome: Outcome) {
        let mut line = serde_json::to_vec(&outcome).expect("an Outcome always serializes");
        line.push(b'\n');
        self.progress.inc(1);
        if let Err(e) = self.output.write_all(&line).await
            && !self.summary.output_broken
        {
            // 読み手がいなくなりました（`| head`など）。続けても結果を渡せないので、中断します
            error!("結果を書けません: {e}");
            self.summary.output_broken = true;
        }
    }
    // ANCHOR_END: report
}

#[cfg(test)]
mod tests;

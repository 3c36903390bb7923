//! ワーカー: 組み込みのワーカーの本体と、ワーカーのプロセスを起動する部分。

use std::ffi::OsString;
use std::future::Future;
use std::io::{self, Write};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::to_raw_value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::process::{Child, Command};

use crate::protocol::{Reply, Task, read_line_blocking};

// ANCHOR: work
/// 組み込みのワーカーが実行できるタスク。例:
/// `{"id":1,"cpu":100000}`、`{"id":2,"sleep_ms":50}`、`{"id":3,"fault":"crash"}`
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// CPUを使う処理: 1からnまでのi²の和
    Cpu(u64),
    /// 待つだけの処理（I/O待ちの代わり）
    SleepMs(u64),
    /// 指定した時間だけCPUを使い続ける処理
    SpinMs(u64),
    /// わざと障害を起こす（テストとデモのため）
    Fault(Fault),
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// ワーカーが異常終了する
    Crash,
    /// ワーカーが応答しなくなる
    Hang,
    /// ワーカーがJSONでない行を書く
    Garbage,
}

#[derive(Deserialize)]
struct BuiltinTask {
    #[serde(flatten)]
    work: Work,
}
// ANCHOR_END: work

// ANCHOR: worker
/// `balancer worker`として起動されたときの本体です。タスクを渡された順に1つずつ実行し、
/// 返事を1行ずつ標準出力に書きます。非同期は使わない普通のプログラムです。
pub fn main() -> io::Result<()> {
    let tasks = watch_stdin();
    let mut out = io::stdout().lock();
    for line in tasks {
        // ディスパッチャはidのあるJSONのオブジェクトしか渡しません
        let task = Task::parse(&line).map_err(io::Error::other)?;
        let reply = match serde_json::from_str::<BuiltinTask>(&line) {
            Err(e) => error(
                task.id,
                format!("組み込みのワーカーが知らないタスクです（{e}）"),
            ),
            Ok(BuiltinTask { work }) => match work {
                Work::Cpu(n) => match sum_of_squares(n) {
                    Some(sum) => value(task.id, sum),
                    None => error(task.id, format!("{n}までのi²の和はu64に収まりません")),
                },
                Work::SleepMs(ms) => {
                    thread::sleep(Duration::from_millis(ms));
                    value(task.id, ms)
                }
                Work::SpinMs(ms) => value(task.id, spin(Duration::from_millis(ms))),
                Work::Fault(Fault::Crash) => std::process::exit(70),
                Work::Fault(Fault::Hang) => loop {
                    thread::park();
                },
                Work::Fault(Fault::Garbage) => {
                    writeln!(out, "これはJSONではありません")?;
                    out.flush()?;
                    continue;
                }
            },
        };
        serde_json::to_writer(&mut out, &reply)?;
        out.write_all(b"\n")?;
        // 1行ごとに送り出します。バッファに溜めたままだと、ディスパッチャには応答がないように見えます
        out.flush()?;
    }
    Ok(())
}

/// 標準入力を別のスレッドで読み、1行ずつ渡します。入力が閉じたら、実行中のタスクの途中でも
/// プロセスを終えます。ディスパッチャは渡すタスクがなくなったときか、死んだときにしか閉じないからです。
fn watch_stdin() -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        while let Ok(Some(line)) = read_line_blocking(&mut stdin) {
            if tx.send(line).is_err() {
                return;
            }
        }
        std::process::exit(0);
    });
    rx
}
// ANCHOR_END: worker

fn value(id: u64, value: u64) -> Reply {
    Reply {
        id,
        value: Some(to_raw_value(&value).expect("a u64 always serializes")),
        error: None,
    }
}

fn error(id: u64, error: String) -> Reply {
    Reply {
        id,
        value: None,
        error: Some(error),
    }
}

/// 1からnまでのi²の和。u64に収まらなければ`None`です。
pub fn sum_of_squares(n: u64) -> Option<u64> {
    let mut sum = 0u64;
    for i in 1..=n {
        // black_boxがないと、最適化でループが公式に置き換えられることがあります
        let i = std::hint::black_box(i);
        sum = sum.checked_add(i.checked_mul(i)?)?;
    }
    Some(sum)
}

/// `time`のあいだCPUを使い続け、回したループの回数を返します。
fn spin(time: Duration) -> u64 {
    let started = Instant::now();
    let mut rounds = 0u64;
    while started.elapsed() < time {
        rounds = std::hint::black_box(rounds + 1);
    }
    rounds
}

// ANCHOR: spawn_trait
/// 起動したワーカー: 標準入力、標準出力、標準エラー出力と、止めて回収するための`Process`。
pub struct Worker {
    pub pid: Option<u32>,
    pub stdin: Box<dyn AsyncWrite + Send + Unpin>,
    pub stdout: Box<dyn AsyncRead + Send + Unpin>,
    pub stderr: Option<Box<dyn AsyncRead + Send + Unpin>>,
    pub process: Box<dyn Process>,
}

/// ワーカーを止めて回収する方法。本物は子プロセス、テストでは同じプロセスの中の模擬ワーカーです。
pub trait Process: Send {
    /// 止めるよう求めます（もう終わっていれば何も起きません）。
    fn kill(&mut self);
    /// 終わるのを待って回収します。
    fn wait(&mut self) -> Pin<Box<dyn Future<Output = io::Result<ExitStatus>> + Send + '_>>;
}

/// ワーカーの起動のしかた。ディスパッチャはこれを通してしかワーカーを起動しないので、
/// テストでは模擬ワーカーと一時停止した時計でディスパッチャを動かせます。
pub trait Spawn {
    fn spawn(&mut self) -> io::Result<Worker>;
}

impl Process for Child {
    fn kill(&mut self) {
        let _ = self.start_kill();
    }

    fn wait(&mut self) -> Pin<Box<dyn Future<Output = io::Result<ExitStatus>> + Send + '_>> {
        Box::pin(Child::wait(self))
    }
}
// ANCHOR_END: spawn_trait

// ANCHOR: spawn
/// ワーカーとして起動するコマンド。既定は自分自身の実行ファイルに`worker`引数を付けたものです。
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    program: OsString,
    args: Vec<OsString>,
}

impl WorkerCommand {
    /// 組み込みのワーカー（19.2節と同じく、自分自身を子プロセスとして起動します）。
    pub fn builtin() -> io::Result<WorkerCommand> {
        let program = std::env::current_exe()?.into_os_string();
        Ok(WorkerCommand::new(program, vec!["worker".into()]))
    }

    /// JSON Linesの約束を話す任意のコマンド（`balancer -- python3 worker.py`）。
    pub fn new(program: OsString, args: Vec<OsString>) -> WorkerCommand {
        WorkerCommand { program, args }
    }
}

impl Spawn for WorkerCommand {
    fn spawn(&mut self) -> io::Result<Worker> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // ワーカーの標準エラー出力は番号を付けてログへ流します。端末へ直接書かせると進捗表示が崩れます
            .stderr(Stdio::piped())
            .kill_on_drop(true); // ハンドルをなくしても、子プロセスを置き去りにしないための保険
        // 端末のCtrl-Cはフォアグラウンドのプロセスグループ全体に届きます。ワーカーを別のグループに
        // 入れておき、いつ止めるかはディスパッチャが決めます
        #[cfg(unix)]
        command.process_group(0);
        #[cfg(target_os = "linux")]
        die_with_parent(&mut command);
        let mut child = command.spawn()?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            unreachable!("all three are piped");
        };
        Ok(Worker {
            pid: child.id(),
            stdin: Box::new(stdin),
            stdout: Box::new(stdout),
            stderr: Some(Box::new(stderr)),
            process: Box::new(child),
        })
    }
}

/// ディスパッチャが`kill -9`などで死んだら、カーネルにワーカーを`SIGKILL`で殺してもらいます
/// （Linuxの`PR_SET_PDEATHSIG`）。この設定は`exec`のあとも残るので、どのコマンドにも効きます。
///
/// 注意: 「親」とは子を起動したスレッドのことで、そのスレッドが終わってもシグナルが届きます。
/// ディスパッチャはメインスレッドだけで動くランタイム（`current_thread`）から起動するので大丈夫です。
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    let parent = libc::pid_t::try_from(std::process::id()).expect("a pid fits in pid_t");
    // SAFETY: このクロージャはforkのあと、execの前に子プロセスで動きます。呼ぶのはシグナル安全な
    // システムコール（prctl、getppid）だけで、メモリの確保もロックもしません
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) == -1 {
                return Err(io::Error::last_os_error());
            }
            // forkからprctlまでのあいだに親が死んでいたら、シグナルはもう来ません。自分で確かめます
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}
// ANCHOR_END: spawn

/// テスト用の模擬ワーカー: 組み込みのワーカーと同じタスクを、同じプロセスの中のタスクとして実行します。
/// 待つ処理は`tokio::time::sleep`なので、一時停止した時計のテストで時間が正確に進みます。
#[cfg(test)]
pub(crate) mod fake {
    use std::os::unix::process::ExitStatusExt;

    use tokio::io::{AsyncWriteExt, BufReader, DuplexStream};
    use tokio::task::JoinHandle;

    use super::*;

    pub(crate) struct InProcess;

    impl Spawn for InProcess {
        fn spawn(&mut self) -> io::Result<Worker> {
            let (stdin, worker_in) = tokio::io::duplex(64 * 1024);
            let (worker_out, stdout) = tokio::io::duplex(64 * 1024);
            Ok(Worker {
                pid: None,
                stdin: Box::new(stdin),
                stdout: Box::new(stdout),
                stderr: None,
                process: Box::new(Fake(Some(tokio::spawn(serve(worker_in, worker_out))))),
            })
        }
    }

    struct Fake(Option<JoinHandle<i32>>);

    impl Process for Fake {
        fn kill(&mut self) {
            if let Some(task) = &self.0 {
                task.abort();
            }
        }

        fn wait(&mut self) -> Pin<Box<dyn Future<Output = io::Result<ExitStatus>> + Send + '_>> {
            Box::pin(async move {
                let task = self.0.take().expect("waited once");
                Ok(match task.await {
                    Ok(code) => ExitStatus::from_raw(code << 8),
                    Err(_) => ExitStatus::from_raw(9), // SIGKILLで殺されたのと同じ形
                })
            })
        }
    }

    async fn serve(input: DuplexStream, mut output: DuplexStream) -> i32 {
        let mut input = BufReader::new(input);
        while let Ok(Some(line)) = crate::protocol::read_line(&mut input).await {
            let id = Task::parse(&line).expect("the dispatcher sends tasks").id;
            let reply = match serde_json::from_str::<BuiltinTask>(&line).map(|t| t.work) {
                Err(e) => error(id, e.to_string()),
                Ok(Work::Cpu(n)) => match sum_of_squares(n) {
                    Some(sum) => value(id, sum),
                    None => error(id, "overflow".into()),
                },
                Ok(Work::SleepMs(ms) | Work::SpinMs(ms)) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    value(id, ms)
                }
                Ok(Work::Fault(Fault::Crash)) => return 70,
                Ok(Work::Fault(Fault::Hang)) => std::future::pending().await,
                Ok(Work::Fault(Fault::Garbage)) => {
                    let _ = output
                        .write_all("これはJSONではありません\n".as_bytes())
                        .await;
                    continue;
                }
            };
            let mut line = serde_json::to_vec(&reply).unwrap();
            line.push(b'\n');
            if output.write_all(&line).await.is_err() {
                break;
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_of_squares_checks_overflow() {
        assert_eq!(sum_of_squares(10), Some(385));
        assert_eq!(sum_of_squares(0), Some(0));
        assert_eq!(sum_of_squares(u64::MAX), None);
    }

    #[test]
    fn the_builtin_tasks_are_the_documented_ones() {
        let parse = |line| serde_json::from_str::<BuiltinTask>(line).map(|t| t.work);
        assert!(matches!(parse(r#"{"id":1,"cpu":10}"#), Ok(Work::Cpu(10))));
        assert!(matches!(
            parse(r#"{"id":2,"sleep_ms":50}"#),
            Ok(Work::SleepMs(50))
        ));
        assert!(matches!(
            parse(r#"{"id":3,"fault":"crash"}"#),
            Ok(Work::Fault(Fault::Crash))
        ));
        assert!(parse(r#"{"id":4,"text":"?"}"#).is_err());
    }
}

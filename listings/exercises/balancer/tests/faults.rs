//! 本物の`balancer`を起動し、ワーカーを殺したり、止めたり、壊れた出力をさせたりして、
//! それでもすべてのタスクがちょうど1回報告されることを確かめます。
//!
//! どの待ちにも上限があります。テストが失敗しても、`Run`のドロップがディスパッチャと
//! ログで見えたすべてのワーカーを殺すので、プロセスは残りません。
#![cfg(target_os = "linux")] // シグナルと/procを使います

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

/// 動いている`balancer`と、その出力を集めるスレッド。
struct Run {
    child: Child,
    stdin: Option<ChildStdin>,
    results: Receiver<Value>,
    log: Arc<Mutex<Log>>,
}

#[derive(Default)]
struct Log {
    text: String,
    /// 標準出力の結果の行（書かれたとおり）
    stdout: String,
    /// ワーカーの席 → いま動いているプロセスのPID
    current: BTreeMap<usize, u32>,
    /// これまでに起動したワーカーのPID
    all: BTreeSet<u32>,
}

/// ログの`key=123`の値を読みます。
fn field(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(&format!(" {key}="))? + key.len() + 2..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

impl Run {
    fn start(args: &[&str]) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_balancer"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start balancer");
        let log = Arc::new(Mutex::new(Log::default()));
        let stdout = child.stdout.take().unwrap();
        let (tx, results) = mpsc::channel();
        let shared = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let line = line.expect("stdout is UTF-8");
                let value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
                let mut log = shared.lock().unwrap();
                log.stdout.push_str(&line);
                log.stdout.push('\n');
                drop(log);
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let shared = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = shared.lock().unwrap();
                if line.contains("ワーカーを起動しました") {
                    let (Some(slot), Some(pid)) = (field(&line, "worker"), field(&line, "pid"))
                    else {
                        panic!("no worker/pid in {line}");
                    };
                    log.current.insert(slot as usize, pid as u32);
                    log.all.insert(pid as u32);
                }
                log.text.push_str(&line);
                log.text.push('\n');
            }
        });
        let stdin = child.stdin.take();
        Run {
            child,
            stdin,
            results,
            log,
        }
    }

    fn send(&mut self, tasks: &[String]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        for task in tasks {
            writeln!(stdin, "{task}").expect("balancer reads its input");
        }
        stdin.flush().unwrap();
    }

    fn close_input(&mut self) {
        self.stdin = None;
    }

    /// 結果を`n`件まで受け取ります（上限つき）。
    fn results(&self, n: usize, got: &mut Vec<Value>) {
        let deadline = Instant::now() + LIMIT;
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.results.recv_timeout(left) {
                Ok(value) => got.push(value),
                Err(e) => panic!(
                    "only {} of {n} results ({e})\n{}",
                    got.len(),
                    self.log_text()
                ),
            }
        }
    }

    /// 終了を待ち、残りの結果をすべて受け取ります（上限つき）。
    fn finish(&mut self, got: &mut Vec<Value>) -> ExitStatus {
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "balancer did not finish\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(10));
        };
        // 標準出力はディスパッチャだけが持っているので、終了すれば閉じます
        while let Ok(value) = self.results.recv_timeout(Duration::from_secs(5)) {
            got.push(value);
        }
        status
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().text.clone()
    }

    /// ワーカーが`n`個起動するのを待って、そのPIDを返します（上限つき）。
    fn wait_for_workers(&self, n: usize) -> Vec<u32> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let pids: Vec<u32> = self.log.lock().unwrap().current.values().copied().collect();
            if pids.len() >= n {
                return pids;
            }
            assert!(
                Instant::now() < deadline,
                "workers did not start\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn worker_pids(&self) -> BTreeSet<u32> {
        self.log.lock().unwrap().all.clone()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in self.worker_pids() {
            if alive(pid) {
                signal_pid("-KILL", pid);
            }
        }
    }
}

fn signal_pid(sig: &str, pid: u32) -> bool {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `pid`のプロセスが、まだ動いている（ゾンビでない）かどうか。
fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .trim_start()
        .chars()
        .next();
    state != Some('Z')
}

/// `pids`のどれかが、CPUを`at_least`使うまで待ちます（上限つき）。
fn wait_for_cpu_time(pids: &[u32], at_least: Duration) {
    // /proc/PID/statの14番目と15番目の欄（ユーザーとカーネルのCPU時間）。単位は1/100秒です
    let cpu_time = |pid: u32| -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 10))
    };
    let deadline = Instant::now() + LIMIT;
    while !pids
        .iter()
        .any(|&pid| cpu_time(pid).is_some_and(|t| t >= at_least))
    {
        assert!(Instant::now() < deadline, "no worker is using the CPU");
        thread::sleep(Duration::from_millis(5));
    }
}

/// `pid`が、まだ動いている（ゾンビでない）balancerのプロセスかどうか。
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let state = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .trim_start()
        .chars()
        .next();
    state != Some('Z') && String::from_utf8_lossy(&cmdline).contains("balancer")
}

fn by_id(results: &[Value]) -> BTreeMap<u64, &Value> {
    let mut map = BTreeMap::new();
    for r in results {
        let id = r["id"].as_u64().expect("every result has an id");
        assert!(map.insert(id, r).is_none(), "id {id} was reported twice");
    }
    map
}

fn sum_of_squares(n: u64) -> u64 {
    n * (n + 1) * (2 * n + 1) / 6
}

// ANCHOR: kill_test
#[test]
fn every_task_completes_exactly_once_while_workers_are_killed() {
    let mut run = Run::start(&["--workers", "4", "--max-attempts", "10", "--timeout", "5s"]);
    let tasks: Vec<(u64, String, u64)> = (0..1000)
        .map(|id| match id % 3 {
            0 => (
                id,
                format!(r#"{{"id":{id},"sleep_ms":{}}}"#, 1 + id % 3),
                1 + id % 3,
            ),
            _ => {
                let n = 1000 + id * 7919 % 20_000;
                (id, format!(r#"{{"id":{id},"cpu":{n}}}"#), sum_of_squares(n))
            }
        })
        .collect();
    let mut rng = fastrand::Rng::with_seed(19);
    let mut killed = BTreeSet::new();
    let mut results = Vec::new();
    // 200件ずつ流し、流すたびに動いているワーカーを1つ`kill -9`します
    for batch in tasks.chunks(200) {
        let lines: Vec<String> = batch.iter().map(|(_, line, _)| line.clone()).collect();
        run.send(&lines);
        let deadline = Instant::now() + LIMIT;
        loop {
            let live: Vec<u32> = run.log.lock().unwrap().current.values().copied().collect();
            let live: Vec<u32> = live.into_iter().filter(|p| !killed.contains(p)).collect();
            if !live.is_empty() {
                let pid = live[rng.usize(..live.len())];
                if signal_pid("-KILL", pid) {
                    killed.insert(pid);
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no worker to kill\n{}",
                run.log_text()
            );
            thread::sleep(Duration::from_millis(5));
        }
        let done = results.len() + batch.len();
        run.results(done.saturating_sub(50), &mut results);
    }
    run.close_input();
    let status = run.finish(&mut results);
    let log = run.log_text();
    assert!(status.success(), "{status}\n{log}");

    let reported = by_id(&results);
    assert_eq!(reported.len(), 1000, "{log}");
    for (id, _, expected) in &tasks {
        let r = reported[id];
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["value"].as_u64(), Some(*expected), "{r}");
    }
    assert!(killed.len() >= 5, "killed {killed:?}");
    let restarts = log.matches("ワーカーを再起動します").count();
    assert!(restarts >= 5, "{restarts} restarts\n{log}");
}
// ANCHOR_END: kill_test

#[test]
fn a_poison_task_fails_after_k_attempts_and_the_rest_complete() {
    let mut run = Run::start(&["--workers", "2", "--max-attempts", "3"]);
    let mut tasks: Vec<String> = (0..30)
        .map(|id| format!(r#"{{"id":{id},"sleep_ms":5}}"#))
        .collect();
    tasks[7] = r#"{"id":7,"fault":"crash"}"#.into();
    run.send(&tasks);
    run.close_input();
    let mut results = Vec::new();
    let status = run.finish(&mut results);
    let log = run.log_text();
    assert_eq!(status.code(), Some(1), "one task failed\n{log}");

    let reported = by_id(&results);
    assert_eq!(reported.len(), 30);
    let poison = reported[&7];
    assert_eq!(poison["status"], "failed");
    let error = poison["error"].as_str().unwrap();
    assert!(
        error.starts_with("このタスクでワーカーが3回失敗したのであきらめました"),
        "{error}"
    );
    assert!(error.contains("exit status: 70"), "{error}");
    for (id, r) in &reported {
        if *id != 7 {
            assert_eq!(r["status"], "ok", "{r}");
        }
    }
    assert_eq!(
        log.matches("exit status: 70）。ワーカーを再起動します")
            .count(),
        3,
        "{log}"
    );
}

#[test]
fn malformed_output_is_an_error_of_that_worker_not_a_panic() {
    let mut run = Run::start(&["--workers", "2", "--max-attempts", "2"]);
    let mut tasks: Vec<String> = (0..10)
        .map(|id| format!(r#"{{"id":{id},"cpu":100}}"#))
        .collect();
    tasks[3] = r#"{"id":3,"fault":"garbage"}"#.into();
    run.send(&tasks);
    run.close_input();
    let mut results = Vec::new();
    let status = run.finish(&mut results);
    let log = run.log_text();
    assert_eq!(status.code(), Some(1), "one task failed\n{log}");

    let reported = by_id(&results);
    assert_eq!(reported.len(), 10);
    let garbage = reported[&3];
    assert_eq!(garbage["status"], "failed");
    assert!(
        garbage["error"]
            .as_str()
            .unwrap()
            .contains("ワーカーの出力が不正です"),
        "{garbage}"
    );
    for (id, r) in &reported {
        if *id != 3 {
            assert_eq!(r["value"].as_u64(), Some(sum_of_squares(100)), "{r}");
        }
    }
    assert!(!log.contains("panicked"), "{log}");
}

// ANCHOR: signal_test
#[test]
fn sigint_sigterm_and_sighup_drain_and_leave_no_worker_behind() {
    for (signal, code) in [("-INT", 130), ("-TERM", 143), ("-HUP", 129)] {
        let mut run = Run::start(&["--workers", "2", "--in-flight", "2"]);
        let tasks: Vec<String> = (0..100)
            .map(|id| format!(r#"{{"id":{id},"sleep_ms":20}}"#))
            .collect();
        run.send(&tasks); // 入力は閉じません: 中断は入力の終わりを待たずに効くはずです
        let mut results = Vec::new();
        run.results(2, &mut results);
        assert!(signal_pid(signal, run.child.id()));
        let status = run.finish(&mut results);
        let log = run.log_text();
        assert_eq!(status.code(), Some(code), "{signal}\n{log}");

        let reported = by_id(&results);
        let ok = reported.values().filter(|r| r["status"] == "ok").count();
        assert!((2..100).contains(&ok), "{signal}: {ok}");
        for r in reported.values().filter(|r| r["status"] != "ok") {
            // 実行中のタスクは最後まで実行され、渡していないタスクだけが中断として報告されます
            assert_eq!(
                r["error"], "中断したので実行しませんでした",
                "{signal}: {r}"
            );
        }
        let pids = run.worker_pids();
        assert_eq!(pids.len(), 2, "{log}");
        assert!(
            pids.iter().all(|&pid| !alive(pid)),
            "{signal}: {pids:?}\n{log}"
        );
    }
}
// ANCHOR_END: signal_test

// ANCHOR: orphan_test
/// ディスパッチャが`kill -9`で死んでも、ワーカーが残らないこと。組み込みのワーカーの片方は応答しない
/// タスクで止まり、もう片方はCPUを使い続けるタスクの途中です。`sleep`は標準入力をまったく読まない
/// ワーカーで、Linuxの`PR_SET_PDEATHSIG`だけが頼りです。
#[test]
fn workers_die_with_their_dispatcher_even_in_the_middle_of_a_task() {
    let builtin: &[&str] = &["--workers", "2", "--in-flight", "1"];
    let deaf: &[&str] = &["--workers", "2", "--", "sleep", "600"];
    for args in [builtin, deaf] {
        let mut run = Run::start(args);
        run.send(&[
            r#"{"id":1,"fault":"hang"}"#.to_string(),
            r#"{"id":2,"spin_ms":600000}"#.to_string(),
        ]);
        let pids = run.wait_for_workers(2);
        if args == builtin {
            // 2つのタスクがワーカーに届いて、実行が始まるのを待ちます（CPUを使い続けるタスクの
            // ワーカーは、CPU時間が増えていきます）。`sleep`は何も読まないので、待つものはありません
            wait_for_cpu_time(&pids, Duration::from_millis(50));
        }
        assert!(pids.iter().all(|&pid| running(pid)), "{}", run.log_text());

        let killed = Instant::now();
        run.child.kill().unwrap(); // SIGKILL: ディスパッチャは後片付けをする間もなく死にます
        run.child.wait().unwrap();
        let left = loop {
            let left: Vec<u32> = pids.iter().copied().filter(|&pid| running(pid)).collect();
            if left.is_empty() || killed.elapsed() > Duration::from_secs(1) {
                break left;
            }
            thread::sleep(Duration::from_millis(1));
        };
        let elapsed = killed.elapsed();
        eprintln!("{args:?}: kill -9のあと、ワーカーがいなくなるまで{elapsed:?}");
        for &pid in &left {
            signal_pid("-KILL", pid); // 失敗しても、プロセスを残さないように
        }
        assert!(
            left.is_empty(),
            "{args:?}: still running after {elapsed:?}: {left:?}"
        );
    }
}
// ANCHOR_END: orphan_test

/// Linux以外でも効く仕組み: 組み込みのワーカーは、タスクの途中でも標準入力が閉じたら終わります。
#[test]
fn the_builtin_worker_exits_when_its_input_closes_even_mid_task() {
    let mut worker = Command::new(env!("CARGO_BIN_EXE_balancer"))
        .arg("worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = worker.stdin.take().unwrap();
    writeln!(stdin, r#"{{"id":1,"fault":"hang"}}"#).unwrap();
    thread::sleep(Duration::from_millis(100));
    drop(stdin);
    let closed = Instant::now();
    let status = loop {
        if let Some(status) = worker.try_wait().unwrap() {
            break status;
        }
        if closed.elapsed() > Duration::from_secs(1) {
            let _ = worker.kill();
            panic!("the worker kept running after its input closed");
        }
        thread::sleep(Duration::from_millis(1));
    };
    assert!(status.success(), "{status}");
}

// ANCHOR: exit_status_test
#[test]
fn the_exit_status_is_the_number_of_failed_tasks_capped_at_101() {
    // 組み込みのワーカーは知らない形のタスクにエラーを返します（ワーカーの障害ではなく、タスクの失敗）
    for (failing, code) in [(3, 3), (150, 101)] {
        let mut run = Run::start(&["--workers", "2", "-q"]);
        let tasks: Vec<String> = (0..200)
            .map(|id| match id < failing {
                true => format!(r#"{{"id":{id},"unknown":true}}"#),
                false => format!(r#"{{"id":{id},"cpu":10}}"#),
            })
            .collect();
        run.send(&tasks);
        run.close_input();
        let mut results = Vec::new();
        let status = run.finish(&mut results);
        assert_eq!(status.code(), Some(code), "{}", run.log_text());
        let failed = results.iter().filter(|r| r["status"] == "failed").count();
        assert_eq!(failed, failing as usize);
    }
}
// ANCHOR_END: exit_status_test

// ANCHOR: stderr_test
/// 任意のコマンドをワーカーにできること、その標準エラー出力がワーカーの番号付きでログに出て、
/// 結果（標準出力）には混ざらないこと。ワーカーはシェルの数行です。
#[test]
fn any_command_can_be_a_worker_and_its_stderr_is_prefixed() {
    let script = r#"while IFS= read -r line; do
  id=${line#*\"id\":}; id=${id%%[,\}]*}
  echo "id $id を処理します" >&2
  printf '{"id":%s,"value":"sh"}\n' "$id"
done"#;
    let mut run = Run::start(&["--workers", "2", "--", "sh", "-c", script]);
    let tasks: Vec<String> = (1..=20)
        .map(|id| format!(r#"{{"id":{id},"text":"何でも"}}"#))
        .collect();
    run.send(&tasks);
    run.close_input();
    let mut results = Vec::new();
    let status = run.finish(&mut results);
    let log = run.log_text();
    assert!(status.success(), "{status}\n{log}");
    let reported = by_id(&results);
    assert_eq!(reported.len(), 20);
    assert!(reported.values().all(|r| r["value"] == "sh"), "{results:?}");
    for id in 1..=20 {
        let worker = reported[&id]["worker"].as_u64().unwrap();
        let line = format!("[ワーカー{worker}] id {id} を処理します");
        assert!(log.contains(&line), "{line}\n{log}");
    }
}
// ANCHOR_END: stderr_test

// ANCHOR: python_test
#[test]
fn a_python_worker_is_driven_by_the_rust_dispatcher() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("python3が見つからないので、Pythonのワーカーのテストを飛ばします");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/worker.py");
    let mut run = Run::start(&["--workers", "2", "--", "python3", script]);
    run.send(&[
        r#"{"id":1,"cpu":10}"#.to_string(),
        r#"{"id":2,"cpu":5000000}"#.to_string(),
        r#"{"id":3,"sleep_ms":20}"#.to_string(),
        r#"{"id":4,"fault":"crash"}"#.to_string(),
    ]);
    run.close_input();
    let mut results = Vec::new();
    let status = run.finish(&mut results);
    let log = run.log_text();
    assert_eq!(status.code(), Some(1), "{log}");
    let reported = by_id(&results);
    assert_eq!(reported[&1]["value"], 385);
    // Pythonの整数には上限がありません。ディスパッチャは値を解釈せず、書かれた桁のまま写します
    let stdout = run.log.lock().unwrap().stdout.clone();
    assert!(
        stdout.contains(r#""id":2,"value":41666679166667500000,"#),
        "{stdout}"
    );
    assert_eq!(reported[&3]["value"], 20);
    assert_eq!(reported[&4]["status"], "failed");
    assert!(
        reported[&4]["error"]
            .as_str()
            .unwrap()
            .contains("知らないタスク"),
        "{log}"
    );
}
// ANCHOR_END: python_test

#[test]
fn invalid_input_lines_are_skipped_and_reported() {
    let mut run = Run::start(&["--workers", "1"]);
    let tasks = [
        r#"{"id":1,"cpu":10}"#,
        "not json",
        r#"{"id":1,"cpu":20}"#,
        r#"{"id":2,"sleep_ms":1}"#,
    ];
    run.send(&tasks.map(String::from));
    run.close_input();
    let mut results = Vec::new();
    let status = run.finish(&mut results);
    let log = run.log_text();
    assert_eq!(status.code(), Some(2), "two invalid lines\n{log}");
    assert_eq!(by_id(&results).len(), 2);
    assert!(log.contains("2行目"), "{log}");
    assert!(log.contains("3行目: id 1が重複しています"), "{log}");
}

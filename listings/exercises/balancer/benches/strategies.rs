//! 分散の方法とワーカーの数で、かかる時間がどう変わるかを測ります。テストではありません。
//!
//! 実行方法: `cargo bench -p balancer`（リリースビルドの`balancer`を起動して、数値を表示します）
//! 1. 偏りのある負荷（短いタスクの中に長いタスクが少し混ざる）の全体の時間（makespan）を、
//!    round-robin・least-outstanding・power-of-twoで比べます。
//! 2. CPUを使う処理のスループットを、ワーカー1・2・4個で比べます。
//!
//! `cargo test`ではこのプログラムが小さな負荷で1回ずつ動き、すべての結果が返ることだけを確かめます。

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// `balancer`にタスクを流して、終わるまでの時間を返します。すべてのタスクが完了したことも確かめます。
fn run(args: &[&str], tasks: &[String]) -> Duration {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_balancer"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start balancer");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = tasks.join("\n");
    let writer = thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut completed = 0;
    for line in BufReader::new(child.stdout.take().expect("stdout is piped")).lines() {
        let line = line.expect("balancer writes UTF-8");
        assert!(line.starts_with(r#"{"status":"ok""#), "{line}");
        completed += 1;
    }
    writer
        .join()
        .unwrap()
        .expect("balancer reads all of its input");
    assert!(child.wait().unwrap().success());
    assert_eq!(completed, tasks.len());
    started.elapsed()
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn main() {
    // `cargo bench`は`--bench`を渡します。`cargo test`から呼ばれたときは小さく1回だけ
    let full = std::env::args().any(|a| a == "--bench");
    let (repeat, short, long, count, cpu_n, cpu_tasks) = if full {
        (3, 10, 400, 200, 3_000_000, 600)
    } else {
        (1, 1, 20, 20, 1000, 8)
    };

    // ほかのプロセスが動いていると数値が揺れます。測ったときの負荷平均も表示しておきます
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        println!("負荷平均（1分、5分、15分）: {}", load.join(" "));
    }

    // 1. 偏りのある負荷: 長いタスクを、決まった乱数の位置に8つ（テストでは2つ）混ぜます
    let mut rng = fastrand::Rng::with_seed(5);
    let long_count = (count / 25).max(2);
    let mut sleeps = vec![short; count];
    for slot in rng.choose_multiple(0..count, long_count) {
        sleeps[slot] = long;
    }
    let tasks: Vec<String> = sleeps
        .iter()
        .enumerate()
        .map(|(id, ms)| format!(r#"{{"id":{id},"sleep_ms":{ms}}}"#))
        .collect();
    let ideal = Duration::from_millis(sleeps.iter().sum::<u64>() / 4);
    println!(
        "偏りのある負荷: {count}タスク（{long}ミリ秒×{long_count}、{short}ミリ秒×{}）、ワーカー4個、\
         --in-flight 4、{repeat}回の中央値",
        count - long_count
    );
    println!("  理想（処理時間の合計÷4）    {ideal:.2?}");
    for strategy in ["round-robin", "least-outstanding", "power-of-two"] {
        let args = ["--workers", "4", "--in-flight", "4", "--strategy", strategy];
        let time = median((0..repeat).map(|_| run(&args, &tasks)).collect());
        let ratio = time.as_secs_f64() / ideal.as_secs_f64();
        println!("  {strategy:<22}  {time:.2?}（理想の{ratio:.2}倍）");
    }

    // 2. CPUを使う処理のスループット
    let tasks: Vec<String> = (0..cpu_tasks)
        .map(|id| format!(r#"{{"id":{id},"cpu":{cpu_n}}}"#))
        .collect();
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "CPUを使う処理: {cpu_tasks}タスク（Σi², n={cpu_n}）、コア{cores}個、{repeat}回の中央値"
    );
    let mut base = None;
    for workers in ["1", "2", "4"] {
        let args = ["--workers", workers, "--strategy", "least-outstanding"];
        let time = median((0..repeat).map(|_| run(&args, &tasks)).collect());
        let per_second = cpu_tasks as f64 / time.as_secs_f64();
        let speedup = per_second / *base.get_or_insert(per_second);
        println!("  ワーカー{workers}個  {time:.2?}  {per_second:.0}タスク/秒（{speedup:.2}倍）");
    }
}

//! 本物の`monitor`を起動して、利用者と同じように使って確かめます。
//! どの待ち時間にも上限があり、プログラムが止まらなければテストは失敗します（固まりません）。

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_monitor");
const LIMIT: Duration = Duration::from_secs(20);

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// 終わるまで（最大LIMIT）待って、出力を集めます
fn run(args: &[&str]) -> book_support::Finished {
    let mut command = Command::new(BIN);
    command.args(args).current_dir(crate_dir());
    book_support::run_command(command, LIMIT)
}

#[test]
fn check_lists_the_bundled_rules() {
    let out = run(&["--check", "--config", "rules.toml"]);
    assert!(out.status.success(), "{}", out.stderr);
    let stdout = out.stdout;
    assert!(
        stdout.starts_with("rules.toml: 5個のルールを読みました\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "cpu_busy [warning]: cpu_percent > 90 が 5s 続いたら発火、<= 70 が 5s 続いたら解決"
        ),
        "{stdout}"
    );
}

#[test]
fn a_bad_config_is_rejected_at_start_with_file_line_and_reason() {
    let out = run(&["--config", "bad-rules.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "測定を始めていない");
    let stderr = out.stderr;
    assert!(stderr.starts_with("エラー: bad-rules.toml:10:19: op = \">\"のとき、clear_thresholdはthreshold（90）以下にします\n"), "{stderr}");
    assert!(
        stderr.contains("10 | clear_threshold = 95\n   |                   ^^\n"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    std::fs::write(
        &path,
        "[[rule]]\nname = \"x\"\nmetric = \"cpu_pct\"\nop = \">\"\nthreshold = 1\n",
    )
    .unwrap();
    let out = run(&["--check", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = out.stderr;
    assert!(
        stderr.contains("typo.toml:3:10: unknown variant `cpu_pct`, expected one of `cpu_percent`"),
        "{stderr}"
    );

    let out = run(&["--config", "no-such-file.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr
            .contains("設定ファイルno-such-file.tomlを読めません")
    );
}

#[test]
fn takes_the_requested_number_of_samples_as_json_lines() {
    let out = run(&[
        "--interval",
        "100ms",
        "--count",
        "3",
        "--samples",
        "--top",
        "2",
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    let samples: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(samples.len(), 3);
    for s in &samples {
        assert_eq!(s["type"], "sample");
        let cpu = s["cpu"]["total_percent"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&cpu));
        assert!(s["memory"]["used_bytes"].as_u64() <= s["memory"]["total_bytes"].as_u64());
        assert!(s["top_cpu"].as_array().unwrap().len() <= 2);
    }
    // tsは刻みの予定の時刻から決まるので、間隔はちょうど100msです
    // （マシンが混んでいて刻みを飛ばしたときは、その倍数になります）
    let ts: Vec<u64> = samples.iter().map(|s| s["ts"].as_u64().unwrap()).collect();
    assert!(
        ts.windows(2)
            .all(|w| w[1] > w[0] && (w[1] - w[0]) % 100 == 0),
        "{ts:?}"
    );
}

#[test]
fn writes_to_a_file_with_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitor.jsonl");
    let path_arg = path.to_str().unwrap();
    for _ in 0..2 {
        let out = run(&[
            "--interval",
            "10ms",
            "--count",
            "2",
            "--samples",
            "--output",
            path_arg,
        ]);
        assert!(out.status.success(), "{}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(written.lines().count(), 4, "2回の実行が追記されている");
}

/// 止めるまで動き続けるmonitorを`args`で起動し、標準エラー出力の行を受け取るチャネルと一緒に返します
fn start(args: &[&str], stdout: Stdio) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(crate_dir())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    (child, lines)
}

/// 標準エラー出力を1行ずつ、別のスレッドからチャネルで受け取れるようにします
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for_line(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("\"{needle}\"を含む行が出ない"));
        if line.contains(needle) {
            return line;
        }
    }
}

fn wait_with_deadline(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("monitorが止まらない");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn http_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// `名前 値`の行から値を読みます
/// The address that monitor's log line 「http://ADDR/metrics でメトリクスを配信します」 names
fn metrics_address(lines: &mpsc::Receiver<String>) -> String {
    let line = wait_for_line(lines, "/metrics でメトリクスを配信します");
    line.split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_string()
}

fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn serves_metrics_and_stops_cleanly_on_ctrl_c() {
    let (mut child, lines) = start(
        &[
            "--interval",
            "20ms",
            "--listen",
            "127.0.0.1:0",
            "--config",
            "rules.toml",
        ],
        Stdio::null(),
    );
    let addr = metrics_address(&lines);

    // サンプルが2つ以上になるまで、/metricsを読み直します
    let deadline = Instant::now() + LIMIT;
    let body = loop {
        let response = http_get(&addr, "/metrics");
        assert!(
            response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
            "{response}"
        );
        let body = response.split_once("\r\n\r\n").unwrap().1.to_string();
        if metric(&body, "monitor_samples_total").is_some_and(|n| n >= 2.0) {
            break body;
        }
        assert!(Instant::now() < deadline, "サンプルが増えない: {body}");
        thread::sleep(Duration::from_millis(50));
    };
    let cpu = metric(&body, "monitor_cpu_usage_percent").expect("CPU使用率がない");
    // 最後に測った時刻も出ているので、測定が止まれば外から分かります
    let last =
        metric(&body, "monitor_last_sample_timestamp_seconds").expect("最後の測定の時刻がない");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - last).abs() < 10.0, "{now} - {last}");
    assert!((0.0..=100.0).contains(&cpu));
    assert!(metric(&body, "monitor_memory_total_bytes").unwrap() > 0.0);
    assert!(http_get(&addr, "/nothing").contains(" 404 "));

    // Ctrl-Cと同じSIGINTを送ると、片付けて終了コード0で終わります
    let pid = i32::try_from(child.id()).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = wait_with_deadline(&mut child);
    assert!(status.success(), "{status}");
    wait_for_line(&lines, "停止しました");
}

#[test]
fn sigterm_stops_it_too() {
    let (mut child, lines) = start(&["--interval", "20ms", "--samples"], Stdio::piped());
    // 最初のサンプルが出るまで待ちます（約20ms。上限はLIMIT）
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        // 終わりまで読み続けます（途中で閉じると、monitorの書き込みが失敗してしまいます）
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(LIMIT).expect("サンプルが出ない");
    assert!(first.starts_with("{\"type\":\"sample\""), "{first}");
    let pid = i32::try_from(child.id()).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = wait_with_deadline(&mut child);
    assert!(status.success(), "{status}");
    wait_for_line(&lines, "停止しました");
}

/// 標準出力を読む側が詰まっていても（読まれないパイプ）、Ctrl-Cで終われます
#[test]
fn a_stalled_stdout_never_keeps_it_from_stopping() {
    // 最初のサンプルで一度に発火する1,000個のルール。警告の行（約200バイト）は、パイプ（64KiB）と
    // 書き出しのバッファと書き出しのチャネル（256行）を合わせたより多いので、評価のタスクの手元に
    // 残り、そのあいだのサンプルの行は捨てて数えられます。サンプルの行だけで詰まらせると、
    // チャネルが埋まるまで10msごとに256回測ることになり、2秒以上かかります
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("many.toml");
    let many: String = (0..1000)
        .map(|i| {
            format!(
                "[[rule]]\nname = \"r{i}\"\nmetric = \"cpu_percent\"\nop = \">=\"\nthreshold = 0\n"
            )
        })
        .collect();
    std::fs::write(&rules, many).unwrap();
    // 標準出力はパイプにつなぎますが、だれも読みません
    let (mut child, lines) = start(
        &[
            "--config",
            rules.to_str().unwrap(),
            "--interval",
            "10ms",
            "--samples",
            "--listen",
            "127.0.0.1:0",
            // 止めるとき、書けない残りを待つ上限（既定は2s）
            "--flush-timeout",
            "100ms",
        ],
        Stdio::piped(),
    );
    let addr = metrics_address(&lines);
    // パイプが埋まり、書けなかったサンプルの行が数え始められるまで待ちます
    let deadline = Instant::now() + LIMIT;
    while !metric(&http_get(&addr, "/metrics"), "monitor_output_dropped_total")
        .is_some_and(|n| n > 0.0)
    {
        assert!(Instant::now() < deadline, "出力が詰まらない");
        thread::sleep(Duration::from_millis(5));
    }
    let pid = i32::try_from(child.id()).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = wait_with_deadline(&mut child);
    assert!(status.success(), "{status}");
    wait_for_line(&lines, "100ms以内に書き終わらなかった行をあきらめました");
    wait_for_line(&lines, "停止しました");
}

/// webhookの受け手: 1つ目の接続は応答せずに切り、その後は200を返して本文を集めます
fn webhook_receiver() -> (String, mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            if i == 0 {
                continue; // 応答せずに切る（送り手には、URL入りのエラーになります）
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
        }
    });
    (addr, rx)
}

/// 発火中の警告は`--repeat-interval`ごとに送り直され、本文にはマシンの名前が入ります。
/// webhookのURLのパス（SlackやDiscordでは秘密のトークン）は、失敗したときもログに出ません
#[test]
fn webhook_alerts_are_resent_and_the_secret_url_is_never_logged() {
    let (addr, bodies) = webhook_receiver();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("always.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"always\"\nmetric = \"cpu_percent\"\nop = \">=\"\nthreshold = 0\n",
    )
    .unwrap();
    let url = format!("http://{addr}/services/T000/B000/TOPSECRET");
    let (mut child, lines) = start(
        &[
            "--config",
            rules.to_str().unwrap(),
            "--interval",
            "50ms",
            "--webhook",
            &url,
            "--repeat-interval",
            "100ms",
            "--instance",
            "test-host",
        ],
        Stdio::null(),
    );
    // 1回目（切られた接続）のやり直し（0.5秒までのどこか）と、100msごとの送り直しで3通届いたら止めます
    let mut received: Vec<serde_json::Value> = Vec::new();
    let deadline = Instant::now() + LIMIT;
    while received.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(body) = bodies.recv_timeout(left) else {
            let _ = child.kill();
            panic!("webhookに3通届かない: {received:?}");
        };
        received.push(serde_json::from_str(&body).unwrap());
    }
    let pid = i32::try_from(child.id()).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = wait_with_deadline(&mut child);
    // 終わったので、ログはすべて届いています（読む側のスレッドがチャネルを閉じるまで集めます）
    let stderr: String = lines.iter().map(|l| l + "\n").collect();
    assert!(status.success(), "{status}\n{stderr}");
    for alert in &received {
        assert_eq!(alert["rule"], "always");
        assert_eq!(alert["state"], "firing");
        assert_eq!(alert["instance"], "test-host");
    }
    assert!(stderr.contains("webhookに送れません"), "{stderr}");
    assert!(stderr.contains(&format!("http://{addr}/…")), "{stderr}");
    assert!(!stderr.contains("TOPSECRET"), "{stderr}");
}

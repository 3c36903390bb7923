//! 本物の子プロセスとパイプで話します。
//! 1つ目のテストは本文の実行結果を、2つ目は「全部書いてから読むとデッドロックする」という説明を確かめます。

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_ipc-pipe-echo");

#[test]
fn each_request_gets_its_reply_before_the_next_is_sent() {
    let output = Command::new(EXE).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let expected: Vec<String> = (0..3)
        .flat_map(|i| {
            [
                format!("親プロセス送信: メッセージ-{i}"),
                format!("親プロセス受信: 受信: メッセージ-{i}"),
            ]
        })
        .chain(["子プロセスは終了しました".to_string()])
        .collect();
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn writing_everything_before_reading_fills_both_pipes_and_blocks() {
    // 約0.4 MB: 2つのパイプのバッファ（Linuxではそれぞれ64 KiB）と子の入出力のバッファを
    // 合わせたより、ずっと多い量です。
    const REQUESTS: usize = 20_000;
    let mut child = Command::new(EXE)
        .arg("child")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_child = child.stdin.take().unwrap();
    let from_child = child.stdout.take().unwrap();

    // 要求をすべて書き込むだけのスレッド。応答は誰も読みません。何行書けたかを数えておきます。
    let written = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    let writer = thread::spawn({
        let written = Arc::clone(&written);
        move || {
            for i in 0..REQUESTS {
                writeln!(to_child, "メッセージ-{i}").unwrap();
                written.store(i + 1, Ordering::SeqCst);
            }
            writeln!(to_child, "exit").unwrap();
            done_tx.send(()).unwrap();
        }
    });

    // 子は応答を書けずに止まり、親は要求を書けずに止まります: 書き込みは途中で止まったまま、
    // 進まなくなります。書けた行数が50ミリ秒変わらなくなるまで待って、確かめます。
    let stalled_at = wait_until_it_stops(&written, Duration::from_millis(50));
    assert!(
        stalled_at < REQUESTS,
        "パイプが詰まらずに全部書けてしまいました"
    );
    assert!(
        done_rx.try_recv().is_err(),
        "パイプが詰まらずに全部書けてしまいました"
    );

    // 応答を読み始めると、両方のパイプが流れ出して書き込みも終わります。
    let reader = thread::spawn(move || BufReader::new(from_child).lines().count());
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("読み始めても書き込みが終わりません");
    writer.join().unwrap();
    assert_eq!(reader.join().unwrap(), REQUESTS);
    assert!(child.wait().unwrap().success());
}

/// `count`が`quiet`の間変わらなくなるまで待ち、そのときの値を返します（30秒たっても動き続けていれば失敗）。
fn wait_until_it_stops(count: &AtomicUsize, quiet: Duration) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = count.load(Ordering::SeqCst);
    let mut unchanged_since = Instant::now();
    loop {
        thread::sleep(Duration::from_millis(5));
        let now = count.load(Ordering::SeqCst);
        if now != last {
            (last, unchanged_since) = (now, Instant::now());
        } else if unchanged_since.elapsed() >= quiet {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "書き込みが止まりません（{now}行）"
        );
    }
}

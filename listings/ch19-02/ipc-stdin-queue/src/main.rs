//! 元のPythonの`multiprocessing.Queue`の例を、子プロセスの標準入力で: 親がプロデューサー、子がコンシューマーです。
//!
//! 実行方法: `cargo run -p ipc-stdin-queue`
//! 親は1行に1つずつアイテムを子の標準入力に書き込み、最後に書き込み側を閉じます。
//! 子は行を読むたびに1つのアイテムとして処理し、入力の終わり（EOF）を見て終了します。

use std::env;
use std::error::Error;
use std::io::{self, BufRead, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

// ANCHOR: consumer
/// 子プロセス側: 入力を1行ずつ読み、1行を1つのアイテムとして処理します（1つに`work`かかります）。
/// 入力の終わり（親が書き込み側を閉じたこと）が終了の合図です。
fn consumer(input: impl BufRead, work: Duration) -> io::Result<Vec<String>> {
    let mut consumed = Vec::new();
    for line in input.lines() {
        let item = line?;
        println!("Consumer 受信: {item}");
        thread::sleep(work); // 処理に時間がかかる
        consumed.push(item);
    }
    println!(
        "Consumer: 入力が閉じられたので終了します（{}個）",
        consumed.len()
    );
    Ok(consumed)
}
// ANCHOR_END: consumer

// ANCHOR: producer
/// 親プロセス側: 子プロセスを起動し、その標準入力にアイテムを1行ずつ書き込みます。
fn producer(count: usize) -> Result<(), Box<dyn Error>> {
    let mut child = Command::new(env::current_exe()?)
        .arg("consumer")
        .stdin(Stdio::piped()) // 子の標準入力を、親が書き込めるパイプにします
        .spawn()?;
    let mut queue = child
        .stdin
        .take()
        .ok_or("子プロセスの標準入力を取れません")?;

    for i in 0..count {
        let item = format!("Producer-item-{i}");
        writeln!(queue, "{item}")?; // 1行が1つのアイテム（アイテムの中に改行は入れられません）
        println!("Producer 送信: {item}");
        thread::sleep(Duration::from_millis(50));
    }
    // Pythonの`queue.put(None)`の代わりに、書き込み側を閉じます。子はEOFを読んで終わります。
    drop(queue);

    let status = child.wait()?;
    if !status.success() {
        return Err(format!("コンシューマーの子プロセスが失敗しました: {status}").into());
    }
    println!("Producer: 子プロセスの終了を確認しました");
    Ok(())
}
// ANCHOR_END: producer

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.as_slice() {
        [] => producer(5),
        [mode] if mode == "consumer" => {
            consumer(io::stdin().lock(), Duration::from_millis(30))?;
            Ok(())
        }
        _ => Err(format!("使い方: ipc-stdin-queue [consumer]（受け取った引数: {args:?}）").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumer_takes_every_line_once_in_order_and_stops_at_eof() {
        // 処理の時間は結果に関係しないので、待たずに処理させます
        let input = io::Cursor::new("a-0\na-1\na-2\n");
        assert_eq!(
            consumer(input, Duration::ZERO).unwrap(),
            ["a-0", "a-1", "a-2"]
        );
        assert!(
            consumer(io::Cursor::new(""), Duration::ZERO)
                .unwrap()
                .is_empty()
        );
    }
}

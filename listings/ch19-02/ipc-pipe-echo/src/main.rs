//! 元のPythonの`multiprocessing.Pipe`の例を、子プロセスの標準入出力で: 要求を1行送り、応答を1行受け取ります。
//!
//! 実行方法: `cargo run -p ipc-pipe-echo`
//! 子プロセスは受け取った行に「受信: 」を付けて返し、`exit`を受け取ると終了します。
//! 親は応答を読んでから次の要求を送ります。

use std::env;
use std::error::Error;
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Command, Stdio};

// ANCHOR: child
/// 子プロセス側: 1行の要求ごとに1行の応答を返します。`exit`か入力の終わりで終了します。
fn echo_server(input: impl BufRead, mut output: impl Write) -> io::Result<()> {
    for line in input.lines() {
        let request = line?;
        if request == "exit" {
            break;
        }
        writeln!(output, "受信: {request}")?;
        // 応答をバッファに残したままにすると、親は読めずに待ち続けます
        output.flush()?;
    }
    Ok(())
}
// ANCHOR_END: child

// ANCHOR: parent
fn run_parent() -> Result<(), Box<dyn Error>> {
    let mut child = Command::new(env::current_exe()?)
        .arg("child")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped()) // 子の標準出力を、親が読めるパイプにします
        .spawn()?;
    let mut to_child = child
        .stdin
        .take()
        .ok_or("子プロセスの標準入力を取れません")?;
    let mut from_child = BufReader::new(
        child
            .stdout
            .take()
            .ok_or("子プロセスの標準出力を取れません")?,
    );

    for i in 0..3 {
        let message = format!("メッセージ-{i}");
        writeln!(to_child, "{message}")?;
        println!("親プロセス送信: {message}");

        // 次の要求を送る前に、この要求への応答を読みます
        let mut response = String::new();
        if from_child.read_line(&mut response)? == 0 {
            return Err("子プロセスが応答する前に終了しました".into());
        }
        println!("親プロセス受信: {}", response.trim_end());
    }

    writeln!(to_child, "exit")?;
    drop(to_child);
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("子プロセスが失敗しました: {status}").into());
    }
    println!("子プロセスは終了しました");
    Ok(())
}
// ANCHOR_END: parent

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.as_slice() {
        [] => run_parent(),
        [mode] if mode == "child" => Ok(echo_server(io::stdin().lock(), io::stdout().lock())?),
        _ => Err(format!("使い方: ipc-pipe-echo [child]（受け取った引数: {args:?}）").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_answers_each_request_and_stops_at_exit() {
        let mut out = Vec::new();
        echo_server(io::Cursor::new("a\nb\nexit\nnever\n"), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "受信: a\n受信: b\n");
    }

    #[test]
    fn the_server_also_stops_at_end_of_input() {
        let mut out = Vec::new();
        echo_server(io::Cursor::new("a\n"), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "受信: a\n");
    }
}

//! `select!`のループでキャンセルされても安全な`Future`と、そうでない`Future`を比べます。
//!
//! 実行方法: `cargo run -p cancel-safety`
//! 行の途中でハートビートの分岐が先に完了すると、`read_line`は読みかけの部分を失い、
//! `Lines::next_line`と`mpsc::Receiver::recv`は何も失いません。

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::{Duration, interval, sleep};

/// ハートビートの間隔です。
const HEARTBEAT: Duration = Duration::from_millis(100);
/// 送り手が行の途中で休む時間です。ハートビートが少なくとも1回はさまる長さにしています。
const PAUSE: Duration = Duration::from_millis(250);

// ANCHOR: unsafe_loop
/// 行を読みながら、ハートビートを数えます。`read_line`はキャンセル安全ではありません。
async fn read_lines_losing(reader: impl AsyncRead + Unpin) -> io::Result<(Vec<String>, u32)> {
    let mut reader = BufReader::new(reader);
    let mut heartbeat = interval(HEARTBEAT);
    let (mut lines, mut beats) = (Vec::new(), 0);
    loop {
        let mut line = String::new();
        tokio::select! {
            read = reader.read_line(&mut line) => {
                if read? == 0 {
                    break; // 送り手が閉じました
                }
                lines.push(line.trim_end().to_string());
            }
            // こちらが先に完了すると、読みかけの`read_line`はドロップされ、
            // それまでに読んだ行の前半は失われます。
            _ = heartbeat.tick() => beats += 1,
        }
    }
    Ok((lines, beats))
}
// ANCHOR_END: unsafe_loop

// ANCHOR: safe_loops
/// 同じことを`Lines::next_line`で書きます。読みかけの行は`Lines`の中に残ります。
async fn read_lines(reader: impl AsyncRead + Unpin) -> io::Result<(Vec<String>, u32)> {
    let mut input = BufReader::new(reader).lines();
    let mut heartbeat = interval(HEARTBEAT);
    let (mut lines, mut beats) = (Vec::new(), 0);
    loop {
        tokio::select! {
            line = input.next_line() => match line? {
                Some(line) => lines.push(line),
                None => break,
            },
            _ = heartbeat.tick() => beats += 1,
        }
    }
    Ok((lines, beats))
}

/// チャネルから受け取りながら、ハートビートを数えます。`recv`はキャンセル安全です。
async fn receive_all(mut rx: mpsc::Receiver<String>) -> (Vec<String>, u32) {
    let mut heartbeat = interval(HEARTBEAT);
    let (mut messages, mut beats) = (Vec::new(), 0);
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Some(message) => messages.push(message),
                None => break, // 送信側がすべてドロップされました
            },
            _ = heartbeat.tick() => beats += 1,
        }
    }
    (messages, beats)
}
// ANCHOR_END: safe_loops

/// 3行を送ります。2行目は途中で`PAUSE`だけ休みます。
async fn send_lines(mut writer: DuplexStream) -> io::Result<()> {
    writer
        .write_all("注文1: りんご\n注文2: み".as_bytes())
        .await?;
    sleep(PAUSE).await;
    writer.write_all("かん\n注文3: ぶどう\n".as_bytes()).await?;
    Ok(()) // `writer`がドロップされ、読み手には終わり（0バイト）が届きます
}

/// 3つのアイテムを、`PAUSE`ずつ間を空けて送ります。
async fn send_messages(tx: mpsc::Sender<String>) {
    for item in ["注文1: りんご", "注文2: みかん", "注文3: ぶどう"] {
        tx.send(item.to_string())
            .await
            .expect("受信側は待っています");
        sleep(PAUSE).await;
    }
}

async fn over_duplex<F, Fut>(read: F) -> io::Result<(Vec<String>, u32)>
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: Future<Output = io::Result<(Vec<String>, u32)>>,
{
    let (writer, reader) = tokio::io::duplex(64);
    let sender = tokio::spawn(send_lines(writer));
    let result = read(reader).await;
    sender.await.expect("送り手がパニックしました")?;
    result
}

async fn over_channel() -> (Vec<String>, u32) {
    let (tx, rx) = mpsc::channel(8);
    let sender = tokio::spawn(send_messages(tx));
    let result = receive_all(rx).await;
    sender.await.expect("送り手がパニックしました");
    result
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let (lines, _) = over_duplex(read_lines_losing).await?;
    println!("read_line:      {lines:?}");
    let (lines, _) = over_duplex(read_lines).await?;
    println!("next_line:      {lines:?}");
    let (messages, _) = over_channel().await;
    println!("mpsc::recv:     {messages:?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn read_line_loses_the_half_line_read_before_the_heartbeat() {
        let (lines, beats) = over_duplex(read_lines_losing).await.unwrap();
        // 「注文2: み」は読まれた後、ハートビートの分岐が選ばれたときに捨てられました。
        assert_eq!(lines, ["注文1: りんご", "かん", "注文3: ぶどう"]);
        // 0、100、200ミリ秒の3回。行の途中で少なくとも1回はさまっています。
        assert_eq!(beats, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn next_line_keeps_the_half_line_across_cancellations() {
        let (lines, beats) = over_duplex(read_lines).await.unwrap();
        assert_eq!(lines, ["注文1: りんご", "注文2: みかん", "注文3: ぶどう"]);
        assert_eq!(beats, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn recv_loses_no_message_across_cancellations() {
        let (messages, beats) = over_channel().await;
        assert_eq!(
            messages,
            ["注文1: りんご", "注文2: みかん", "注文3: ぶどう"]
        );
        // 送り終える750ミリ秒までに、0〜700ミリ秒の8回。そのたびに待っていた`recv`はドロップされています。
        assert_eq!(beats, 8);
    }
}

//! The chat server as its users see it: the real binary on `127.0.0.1:0`, real TCP and
//! WebSocket clients, and the `chat-client` program.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{CLIENT, Client, Server, WAIT};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::Command;

#[tokio::test]
async fn nick_rooms_notices_and_quit() {
    let server = Server::start(&[]);
    let mut alice = Client::tcp(server.tcp).await;
    alice
        .expect_next("*** チャットサーバーへようこそ！あなたはguest-1です。")
        .await;
    alice
        .expect_next("*** 名前は/nick、部屋は/joinで変えられます。コマンドの一覧は/helpです。")
        .await;
    alice.expect_next("*** lobbyに入りました（1人）").await;
    let (mut bob, _) = Client::joined(server.tcp).await;
    alice.expect_next("*** guest-2がlobbyに入りました").await;

    alice.send("/nick alice").await;
    alice.expect_next("*** 名前をaliceに変えました").await;
    bob.expect_next("*** guest-1がaliceに名前を変えました")
        .await;
    bob.send("/nick bob").await;
    bob.expect_next("*** 名前をbobに変えました").await;
    alice
        .expect_next("*** guest-2がbobに名前を変えました")
        .await;

    // A message reaches the others in the room, not the sender.
    alice.send("こんにちは").await;
    bob.expect_next("[lobby] alice: こんにちは").await;
    alice.send("/who").await;
    alice
        .expect_next("*** lobbyにいる人（2人）: alice、bob")
        .await;

    bob.send("/join Rust").await;
    bob.expect_next("*** rustに入りました（1人）").await;
    alice.expect_next("*** bobがlobbyから出ました").await;
    // Once alice's `/who` is answered, her message has been handled: it must not reach bob.
    alice.send("聞こえますか").await;
    alice.send("/who").await;
    alice.expect_next("*** lobbyにいる人（1人）: alice").await;
    bob.send("/rooms").await;
    bob.expect_next("*** 部屋: lobby（1人）、rust（1人）").await;

    alice.send("/join rust").await;
    alice.expect_next("*** rustに入りました（2人）").await;
    bob.expect_next("*** aliceがrustに入りました").await;
    alice.send("/frobnicate").await;
    alice
        .expect_next("!!! 知らないコマンドです: /frobnicate（/helpで一覧を表示します）")
        .await;
    alice.send("/nick bob").await;
    alice.expect_next("!!! bobはすでに使われています").await;

    bob.send("/quit").await;
    assert_eq!(bob.rest_until_closed().await, ["*** さようなら"]);
    alice.expect_next("*** bobが退出しました").await;
}

#[tokio::test]
async fn websocket_clients_share_rooms_with_tcp_clients() {
    let server = Server::start(&[]);
    let (mut tcp, _) = Client::joined(server.tcp).await;
    let (mut web, web_nick) = Client::welcomed(Client::ws(server.http).await).await;
    tcp.expect_next(&format!("*** {web_nick}がlobbyに入りました"))
        .await;

    web.send("/nick web").await;
    web.expect_next("*** 名前をwebに変えました").await;
    tcp.expect_next(&format!("*** {web_nick}がwebに名前を変えました"))
        .await;
    tcp.send("hello from nc").await;
    web.expect_next("[lobby] guest-1: hello from nc").await;
    web.send("ブラウザからこんにちは").await;
    tcp.expect_next("[lobby] web: ブラウザからこんにちは").await;
    web.send("/who").await;
    web.expect_next("*** lobbyにいる人（2人）: guest-1、web")
        .await;
}

#[tokio::test]
async fn the_page_at_root_opens_a_websocket() {
    let server = Server::start(&[]);
    let mut stream = TcpStream::connect(server.http).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains("text/html"), "{response}");
    assert!(response.contains("new WebSocket("), "{response}");
}

#[tokio::test]
async fn oversized_lines_are_refused_and_the_connection_survives() {
    let server = Server::start(&["--max-line", "64"]);
    let (mut sender, _) = Client::joined(server.tcp).await;
    let (mut web, _) = Client::welcomed(Client::ws(server.http).await).await;
    sender.expect_prefix("*** guest-2がlobbyに入りました").await;

    // 1 MB without a newline: the server discards it as it reads and never buffers it whole.
    let mut huge = vec![b'x'; 1 << 20];
    huge.push(b'\n');
    sender.send_bytes(&huge).await;
    sender
        .expect_next("!!! 行が長すぎます（最大64バイト）。この行は捨てました")
        .await;
    sender.send("short").await;
    web.expect_next("[lobby] guest-1: short").await;

    // The same rule over WebSocket.
    web.send(&"y".repeat(65)).await;
    web.expect_next("!!! 行が長すぎます（最大64バイト）。この行は捨てました")
        .await;
    web.send(&"y".repeat(64)).await;
    sender
        .expect_next(&format!("[lobby] guest-2: {}", "y".repeat(64)))
        .await;
}

#[tokio::test]
async fn invalid_utf8_and_control_characters_are_refused() {
    let server = Server::start(&[]);
    let (mut sender, _) = Client::joined(server.tcp).await;
    let (mut other, _) = Client::joined(server.tcp).await;
    sender.expect_prefix("*** guest-2がlobbyに入りました").await;

    sender.send_bytes(b"caf\xe9\n").await; // Latin-1, not UTF-8
    sender
        .expect_next("!!! UTF-8として読めない行は捨てました")
        .await;
    sender.send("\x1b[2J画面を消す").await; // an ANSI escape that would clear the others' terminals
    sender.expect_next("!!! 制御文字を含む行は送れません").await;
    sender.send("/nick \x07bell").await;
    sender.expect_next("!!! 制御文字を含む行は送れません").await;
    sender.send("ok").await;
    // The refused lines never reached anyone: the next line the other client sees is this one.
    other.expect_next("[lobby] guest-1: ok").await;

    let mut web = Client::ws(server.http).await;
    web.send_bytes(b"\xff\xfe").await;
    web.expect_prefix("!!! UTF-8として読めない行は捨てました")
        .await;
}

#[tokio::test]
async fn extra_clients_are_told_the_server_is_full() {
    let server = Server::start(&["--max-clients", "2"]);
    let (mut first, _) = Client::joined(server.tcp).await;
    let (_second, _) = Client::joined(server.tcp).await;

    let mut third = Client::tcp(server.tcp).await;
    assert_eq!(
        third.rest_until_closed().await,
        ["!!! 満員です（最大2人）。しばらくしてから接続してください"]
    );
    // The HTTP port answers 503 when every seat is taken.
    assert_eq!(Client::ws_from(server.http, None).await.err(), Some(503));

    // When someone leaves, the seat is free again (as soon as that connection's task has ended).
    first.send("/quit").await;
    first.rest_until_closed().await;
    let deadline = Instant::now() + WAIT;
    loop {
        let mut next = Client::tcp(server.tcp).await;
        let line = next.next_line().await.expect("a first line");
        if line.starts_with("*** チャットサーバーへようこそ") {
            break;
        }
        assert!(Instant::now() < deadline, "the seat was not freed: {line}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn http_connections_that_never_upgrade_take_seats() {
    let server = Server::start(&["--max-clients", "2"]);
    let before = server.open_files();
    // Two connections to the HTTP port that never send a request.
    let _idle = [
        TcpStream::connect(server.http).await.unwrap(),
        TcpStream::connect(server.http).await.unwrap(),
    ];
    // The server accepts them in the background. Wait until it has (two more open files),
    // before a line client comes (a line client that came first would take a seat, and one
    // of these would get a 503).
    let deadline = Instant::now() + WAIT;
    while server.open_files() < before + 2 {
        assert!(Instant::now() < deadline, "the server did not accept them");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let mut next = Client::tcp(server.tcp).await;
        let line = next.next_line().await.expect("a first line");
        if line == "!!! 満員です（最大2人）。しばらくしてから接続してください"
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the HTTP connections took no seat: {line}"
        );
        drop(next);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_websocket_keeps_the_seat_of_its_http_connection() {
    let server = Server::start(&["--max-clients", "1"]);
    let (_web, _) = Client::welcomed(Client::ws(server.http).await).await;
    let mut tcp = Client::tcp(server.tcp).await;
    assert_eq!(
        tcp.rest_until_closed().await,
        ["!!! 満員です（最大1人）。しばらくしてから接続してください"]
    );
}

#[tokio::test]
async fn websocket_pages_from_other_origins_are_refused() {
    let server = Server::start(&["--allow-origin", "https://chat.example.com"]);
    let same = format!("http://{}", server.http);
    assert!(Client::ws_from(server.http, Some(&same)).await.is_ok());
    assert!(
        Client::ws_from(server.http, Some("https://chat.example.com"))
            .await
            .is_ok()
    );
    assert_eq!(
        Client::ws_from(server.http, Some("https://evil.example"))
            .await
            .err(),
        Some(403)
    );
}

#[tokio::test]
async fn clients_that_do_not_answer_pings_are_disconnected() {
    let server = Server::start(&["--ping-interval", "50ms", "--ping-timeout", "300ms"]);
    let started = Instant::now();
    let (mut silent, _) = Client::joined(server.tcp).await;
    let (mut polite, polite_nick) = Client::joined(server.tcp).await;
    // The browser's side of WebSocket answers pings by itself while it reads (tungstenite too).
    let (mut web, _) = Client::welcomed(Client::ws(server.http).await).await;
    let wanted = format!("[lobby] {polite_nick}: まだいます");
    let web = tokio::spawn(async move { web.expect(&wanted).await });
    let mut answered = 0;
    while answered < 4 {
        let line = polite.next_line().await.expect("polite stays connected");
        if let Some(n) = line.strip_prefix("PING ") {
            polite.send(&format!("PONG {n}")).await;
            answered += 1;
        }
    }
    let rest = silent.rest_until_closed().await;
    assert_eq!(
        rest.last().map(String::as_str),
        Some("!!! PINGに300ミリ秒のあいだ応答がなかったので切断します"),
        "{rest:#?}"
    );
    assert!(rest.contains(&"PING 1".to_string()));
    assert!(started.elapsed() >= Duration::from_millis(350));
    // After four rounds of pings, and after the silent one was cut, the ones that answer are
    // still here.
    polite.send("まだいます").await;
    web.await.expect("the WebSocket client stayed and heard it");
}

#[tokio::test]
async fn a_slow_reader_is_disconnected_while_the_others_keep_receiving() {
    // A 256 KiB send queue (two rounds of 4 lines fit), and no flood limit on the talker (it sends 32 KB lines in bursts).
    let server = Server::start(&[
        "--sendq",
        "256KiB",
        "--max-line",
        "40000",
        "--flood-burst",
        "100000",
    ]);
    // The slow client asks for a small receive buffer and then stops reading.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let (mut slow, slow_nick) = Client::welcomed(Client::from_stream(
        socket.connect(server.tcp).await.unwrap(),
    ))
    .await;
    let (mut reader, _) = Client::joined(server.tcp).await;
    let (mut talker, talker_nick) = Client::joined(server.tcp).await;
    reader
        .expect_prefix(&format!("*** {talker_nick}がlobbyに入りました"))
        .await;

    // Lines of 32 KB. The reader keeps up (we read it every 4 lines); the slow client never reads.
    let kicked = format!("*** {slow_nick}が切断されました（受信が遅れすぎたため）");
    let padding = ".".repeat(32 * 1024);
    let mut sent = 0;
    let mut notice_seen = false;
    while !notice_seen {
        assert!(sent < 2_000, "the slow client was never disconnected");
        for _ in 0..4 {
            talker.send(&format!("{sent} {padding}")).await;
            sent += 1;
        }
        loop {
            let line = reader
                .next_line()
                .await
                .expect("the reader stays connected");
            if line == kicked {
                notice_seen = true;
            } else if line.starts_with(&format!("[lobby] {talker_nick}: {} ", sent - 1)) {
                break;
            }
        }
    }
    // The others keep receiving after the slow one is gone.
    talker.send("still here").await;
    reader
        .expect_next(&format!("[lobby] {talker_nick}: still here"))
        .await;

    // The slow client got an unbroken prefix of the messages, then (perhaps) the reason, then EOF.
    let rest = slow.rest_until_closed().await;
    let (last, messages) = rest
        .split_last()
        .expect("the slow client had received something");
    let mut messages: Vec<String> = messages
        .iter()
        .filter(|l| !l.starts_with("***"))
        .cloned()
        .collect();
    if !last.starts_with("!!!") {
        messages.push(last.clone());
    } else {
        assert_eq!(
            last,
            "!!! 受信が追いつかないので切断します（未送信が256KiBを超えました）"
        );
    }
    for (n, line) in messages.iter().enumerate() {
        assert!(
            line.starts_with(&format!("[lobby] {talker_nick}: {n} ")),
            "line {n}: {line:.40}"
        );
    }
    assert!(
        messages.len() < sent,
        "the slow client cannot have received everything"
    );
    eprintln!("sent {sent}, the slow client received {}", messages.len());
}

#[tokio::test]
async fn ctrl_c_tells_every_client_and_exits() {
    every_client_hears_goodbye_after(Server::interrupt).await;
}

#[tokio::test]
async fn sigterm_is_handled_like_ctrl_c() {
    every_client_hears_goodbye_after(Server::terminate).await;
}

/// A TCP and a WebSocket client are connected when `stop` signals the server: both get the
/// farewell, then the connection closes, and the server exits successfully.
async fn every_client_hears_goodbye_after(stop: fn(&Server)) {
    let mut server = Server::start(&[]);
    let (mut tcp, _) = Client::joined(server.tcp).await;
    let (mut web, _) = Client::welcomed(Client::ws(server.http).await).await;
    tcp.expect_prefix("*** guest-2がlobbyに入りました").await;

    stop(&server);
    assert_eq!(
        tcp.rest_until_closed().await,
        ["*** サーバーを停止します。さようなら"]
    );
    assert_eq!(
        web.rest_until_closed().await,
        ["*** サーバーを停止します。さようなら"]
    );
    assert!(server.wait_for_exit().success());
}

/// The longest test here (it must outlast the PING timeout). Tests start in the order of their
/// names, so its name sorts first and the others run beside it.
#[tokio::test]
async fn a_client_program_answers_pings_without_showing_them() {
    let server = Server::start(&["--ping-interval", "50ms", "--ping-timeout", "200ms"]);
    let mut program = client_program(&server, "erin");
    let _stdin = program.stdin.take().unwrap();
    let mut stdout = BufReader::new(program.stdout.take().unwrap()).lines();
    while next_output_line(&mut stdout).await != "*** 名前をerinに変えました" {}
    // Pinged after every 50 ms of quiet for half a second, twice as long as a client that does
    // not answer would last (50 + 200 ms): still connected, and no PING on the screen.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut peer, _) = Client::joined(server.tcp).await;
    peer.send("/who").await;
    peer.expect_prefix("*** lobbyにいる人（2人）").await;
    peer.send("hi").await;
    let line = next_output_line(&mut stdout).await;
    assert!(line.ends_with("がlobbyに入りました"), "{line}");
    assert_eq!(next_output_line(&mut stdout).await, "[lobby] guest-2: hi");
}

/// Starts `chat-client` with piped stdin/stdout.
fn client_program(server: &Server, nick: &str) -> tokio::process::Child {
    Command::new(CLIENT)
        .args(["--addr", &server.tcp.to_string(), "--nick", nick])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start chat-client")
}

async fn next_output_line(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) -> String {
    tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("chat-client printed a line in time")
        .expect("read chat-client's stdout")
        .expect("chat-client's stdout is still open")
}

#[tokio::test]
async fn the_client_sends_stdin_prints_the_server_and_quits_on_eof() {
    let server = Server::start(&[]);
    let (mut peer, _) = Client::joined(server.tcp).await;
    let mut program = client_program(&server, "carol");
    let mut stdin = program.stdin.take().unwrap();
    let mut stdout = BufReader::new(program.stdout.take().unwrap()).lines();

    peer.expect("*** guest-2がcarolに名前を変えました").await;
    stdin
        .write_all("こんにちは、carolです\n".as_bytes())
        .await
        .unwrap();
    peer.expect_next("[lobby] carol: こんにちは、carolです")
        .await;
    peer.send("ようこそ").await;
    while next_output_line(&mut stdout).await != "[lobby] guest-1: ようこそ" {}

    // End of input (Ctrl-D): the client says /quit, prints the goodbye and exits by itself.
    drop(stdin);
    while next_output_line(&mut stdout).await != "*** さようなら" {}
    let status = tokio::time::timeout(WAIT, program.wait())
        .await
        .expect("chat-client exited")
        .unwrap();
    assert!(status.success());
    peer.expect_next("*** carolが退出しました").await;
}

#[tokio::test]
async fn the_client_exits_when_the_server_stops() {
    let mut server = Server::start(&[]);
    let mut program = client_program(&server, "dave");
    let _stdin = program.stdin.take().unwrap(); // open: the client is waiting for input
    let mut stdout = BufReader::new(program.stdout.take().unwrap()).lines();
    while next_output_line(&mut stdout).await != "*** 名前をdaveに変えました" {}

    server.interrupt();
    while next_output_line(&mut stdout).await != "*** サーバーを停止します。さようなら"
    {
    }
    let output = tokio::time::timeout(WAIT, program.wait_with_output())
        .await
        .expect("chat-client exited")
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "*** サーバーが接続を閉じました\n"
    );
    assert!(server.wait_for_exit().success());
}

/// The `nc` session shown on the problem page (`session.txt`) is a real run of this script.
/// Lines typed by alice and lines printed by the server appear as in alice's terminal.
/// Re-record it with `cargo xtask bless`.
#[tokio::test]
async fn the_session_on_the_problem_page_is_real() {
    let server = Server::start(&[]);
    let mut transcript = vec!["$ nc 127.0.0.1 7878".to_string()];
    let mut alice = Client::tcp(server.tcp).await;

    // Alice types `typed` (if any), then reads until the line `until`.
    async fn step(
        alice: &mut Client,
        transcript: &mut Vec<String>,
        typed: Option<&str>,
        until: &str,
    ) {
        if let Some(typed) = typed {
            alice.send(typed).await;
            transcript.push(typed.to_string());
        }
        loop {
            let line = alice.next_line().await.expect("alice stays connected");
            transcript.push(line.clone());
            if line == until {
                return;
            }
        }
    }

    step(
        &mut alice,
        &mut transcript,
        None,
        "*** lobbyに入りました（1人）",
    )
    .await;
    step(
        &mut alice,
        &mut transcript,
        Some("/nick alice"),
        "*** 名前をaliceに変えました",
    )
    .await;
    let (mut bob, _) = Client::joined(server.tcp).await;
    step(
        &mut alice,
        &mut transcript,
        None,
        "*** guest-2がlobbyに入りました",
    )
    .await;
    bob.send("/nick bob").await;
    step(
        &mut alice,
        &mut transcript,
        None,
        "*** guest-2がbobに名前を変えました",
    )
    .await;
    bob.send("こんにちは！").await;
    step(
        &mut alice,
        &mut transcript,
        None,
        "[lobby] bob: こんにちは！",
    )
    .await;
    step(
        &mut alice,
        &mut transcript,
        Some("/who"),
        "*** lobbyにいる人（2人）: alice、bob",
    )
    .await;
    alice.send("bobさん、rustの部屋に行きましょう").await;
    transcript.push("bobさん、rustの部屋に行きましょう".to_string());
    bob.expect("[lobby] alice: bobさん、rustの部屋に行きましょう")
        .await;
    step(
        &mut alice,
        &mut transcript,
        Some("/join rust"),
        "*** rustに入りました（1人）",
    )
    .await;
    bob.send("/join rust").await;
    step(
        &mut alice,
        &mut transcript,
        None,
        "*** bobがrustに入りました",
    )
    .await;
    step(
        &mut alice,
        &mut transcript,
        Some("/rooms"),
        "*** 部屋: rust（2人）",
    )
    .await;
    bob.send("/quit").await;
    step(&mut alice, &mut transcript, None, "*** bobが退出しました").await;
    step(&mut alice, &mut transcript, Some("/quit"), "*** さようなら").await;
    assert_eq!(alice.next_line().await, None);

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/session.txt");
    let actual = transcript.join("\n") + "\n";
    book_support::assert_matches_recording(path, &actual, book_support::Varies::nothing());
}

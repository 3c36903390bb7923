//! 行プロトコル: クライアントから届く1行（`Input`）、クライアントへ送るもの（`Output`）、
//! 切断の理由（`Farewell`）、名前と本文の規則。

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytesize::ByteSize;
use tokio_util::bytes::{BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder, LinesCodec, LinesCodecError};

use crate::config::japanese;

/// 最初に入る部屋。
pub const LOBBY: &str = "lobby";
/// 名前と部屋名の最大文字数。
pub const MAX_NAME_CHARS: usize = 20;

pub const HELP: &[&str] = &[
    "*** /nick 名前  名前を変える（1〜20文字の文字・数字・_・-）",
    "*** /join 部屋  部屋を移る（なければ作られる）",
    "*** /rooms      部屋の一覧",
    "*** /who        今の部屋にいる人",
    "*** /quit       切断する",
    "*** それ以外の行は、今の部屋にいるほかの全員に届きます",
];

// ANCHOR: input
/// クライアントから届いた1行。TCPでもWebSocketでも、ハブにはこの形で届きます。
#[derive(Debug, PartialEq)]
pub enum Input {
    Line(String),
    /// `--max-line`より長かった（中身は捨てた）
    TooLong,
    /// UTF-8として読めなかった（中身は捨てた）
    NotUtf8,
    /// PINGへの返事（WebSocketのPongフレーム、または`PONG`で始まる行）
    Pong,
}

/// `LinesCodec`の2つのエラーを、接続を切らない普通の値に変えるデコーダ。
///
/// `FramedRead`はデコーダがエラーを返すとストリームを終えてしまうので、
/// 長すぎる行や壊れた行は`Ok(Some(Input::TooLong))`などとして返します。
pub struct LineDecoder(LinesCodec);

impl LineDecoder {
    pub fn new(max_line: usize) -> Self {
        // 上限を超えた行はバッファに溜めずに捨てていくので、メモリは上限の分しか使いません。
        LineDecoder(LinesCodec::new_with_max_length(max_line))
    }
}

fn lift(decoded: Result<Option<String>, LinesCodecError>) -> io::Result<Option<Input>> {
    match decoded {
        Ok(Some(line)) if line == "PONG" || line.starts_with("PONG ") => Ok(Some(Input::Pong)),
        Ok(line) => Ok(line.map(Input::Line)),
        Err(LinesCodecError::MaxLineLengthExceeded) => Ok(Some(Input::TooLong)),
        Err(LinesCodecError::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
            Ok(Some(Input::NotUtf8))
        }
        Err(LinesCodecError::Io(e)) => Err(e),
    }
}

impl Decoder for LineDecoder {
    type Item = Input;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<Input>> {
        lift(self.0.decode(buf))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> io::Result<Option<Input>> {
        lift(self.0.decode_eof(buf))
    }
}
// ANCHOR_END: input

// ANCHOR: output
/// クライアントへ送るもの。TCPでは1行、WebSocketではテキストかPingのフレームになります。
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Line(Arc<str>),
    /// 生きているかの確認。TCPでは`PING 番号`の行です。
    Ping(u64),
}

/// TCPの書く側のエンコーダ: `Output`を1行にします。
pub struct LineEncoder;

impl Encoder<Output> for LineEncoder {
    type Error = io::Error;

    fn encode(&mut self, output: Output, buf: &mut BytesMut) -> io::Result<()> {
        match output {
            Output::Line(line) => buf.put_slice(line.as_bytes()),
            Output::Ping(n) => buf.put_slice(format!("PING {n}").as_bytes()),
        }
        buf.put_u8(b'\n');
        Ok(())
    }
}
// ANCHOR_END: output

// ANCHOR: farewell
/// 接続を閉じる前にクライアントへ送る最後の1行の理由。
#[derive(Debug, PartialEq)]
pub enum Farewell {
    Quit,
    /// PINGに`--ping-timeout`のあいだ返事がなかった
    NoPong(Duration),
    /// 送信キューが`--sendq`を超えた
    TooSlow(ByteSize),
    /// 送りすぎの状態が`--flood-kick`のあいだ続いた
    Flood(Duration),
    Shutdown,
}

impl fmt::Display for Farewell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Farewell::Quit => write!(f, "*** さようなら"),
            Farewell::NoPong(d) => {
                write!(
                    f,
                    "!!! PINGに{}のあいだ応答がなかったので切断します",
                    japanese(*d)
                )
            }
            Farewell::TooSlow(cap) => {
                let cap = binary(*cap);
                write!(
                    f,
                    "!!! 受信が追いつかないので切断します（未送信が{cap}を超えました）"
                )
            }
            Farewell::Flood(d) => write!(
                f,
                "!!! 送信が速すぎる状態が{}続いたので切断します",
                japanese(*d)
            ),
            Farewell::Shutdown => write!(f, "*** サーバーを停止します。さようなら"),
        }
    }
}
// ANCHOR_END: farewell

/// 大きさを「1MiB」「512KiB」「1000バイト」のように書きます。
fn binary(size: ByteSize) -> String {
    match size.as_u64() {
        n if n.is_multiple_of(1 << 20) => format!("{}MiB", n >> 20),
        n if n.is_multiple_of(1 << 10) => format!("{}KiB", n >> 10),
        n => format!("{n}バイト"),
    }
}

// ANCHOR: check_name
/// 名前と部屋名の規則: 1〜20文字で、文字・数字・`_`・`-`だけ（日本語の名前も使えます）。
pub fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(format!(
            "1〜{MAX_NAME_CHARS}文字にしてください（{chars}文字でした）"
        ));
    }
    if let Some(c) = name.chars().find(|&c| is_format(c)) {
        // 見えない文字をエラーの行に入れて送り返すこともしません。
        return Err(format!(
            "見えない書式制御文字（U+{:04X}）は使えません",
            u32::from(c)
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_alphanumeric() || c == '_' || c == '-'))
    {
        return Err(format!("「{c}」は使えません（文字・数字・_・-だけです）"));
    }
    Ok(())
}

/// 発言とコマンドの行の規則: 制御文字（ESCなど）と、表示の向きを変える文字を含まないこと。
pub fn check_text(line: &str) -> Result<(), &'static str> {
    if line.chars().any(char::is_control) {
        return Err("!!! 制御文字を含む行は送れません");
    }
    if line.chars().any(is_bidi_control) {
        return Err("!!! 文字の向きを変える制御文字（U+202Eなど）を含む行は送れません");
    }
    Ok(())
}
// ANCHOR_END: check_name

// ANCHOR: format_chars
/// 表示の向きを変える制御文字。後ろの文字列を逆向きに見せて、名前や本文を偽装できます。
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Unicodeの一般カテゴリCf（書式制御文字）。幅のない空白（U+200B）や結合子のように、
/// 画面に見えないまま文字列を別物にします。標準ライブラリには一般カテゴリを調べる関数がないので、
/// Unicode 16.0のCfの一覧をそのまま書いています。
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}
// ANCHOR_END: format_chars

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_turns_bad_lines_into_values_and_keeps_going() {
        let mut decoder = LineDecoder::new(16);
        let mut buf = BytesMut::from(&b"hello\r\n"[..]);
        buf.extend_from_slice(&[b'x'; 40]);
        buf.extend_from_slice(b"\n\xff\xfe\nPONG 3\nafter\n");
        let mut got = Vec::new();
        while let Some(input) = decoder.decode(&mut buf).unwrap() {
            got.push(input);
        }
        let expected = [
            Input::Line("hello".into()),
            Input::TooLong,
            Input::NotUtf8,
            Input::Pong,
            Input::Line("after".into()),
        ];
        assert_eq!(got, expected);
        assert!(buf.is_empty());
    }

    #[test]
    fn names_follow_the_rules() {
        assert!(check_name("alice").is_ok());
        assert!(check_name("たろう_2").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(&"a".repeat(21)).is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("a\u{1b}").is_err());
    }

    #[test]
    fn invisible_and_bidi_characters_are_refused_without_being_echoed() {
        for name in ["admin\u{202E}", "ad\u{200B}min", "\u{2066}bob", "a\u{FEFF}"] {
            let problem = check_name(name).unwrap_err();
            assert!(problem.contains("書式制御文字"), "{name:?}: {problem}");
            assert!(problem.chars().all(|c| !is_format(c)), "{problem:?}");
        }
        // 本文では、向きを変える文字だけを断ります（絵文字の結合子U+200Dは使えます）。
        assert!(check_text("abc \u{202E}cba").is_err());
        assert!(check_text("x\u{2067}y").is_err());
        assert!(check_text("👩\u{200D}💻 こんにちは").is_ok());
        assert!(check_text("\x1b[2J").is_err());
    }

    #[test]
    fn farewells_name_the_limit() {
        assert_eq!(
            Farewell::TooSlow(ByteSize::mib(1)).to_string(),
            "!!! 受信が追いつかないので切断します（未送信が1MiBを超えました）"
        );
        assert_eq!(
            Farewell::Flood(Duration::from_secs(30)).to_string(),
            "!!! 送信が速すぎる状態が30秒続いたので切断します"
        );
    }
}

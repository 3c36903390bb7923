//! ディスパッチャとワーカーの約束（JSON Lines）と、入出力の1行の型。
//!
//! ワーカーは、標準入力から1行に1つのタスクを読み、タスクを渡された順に実行して、
//! 1タスクにつき1行の返事を標準出力に書いて`flush`するプログラムです。言語は問いません。
//! - タスクの行は入力の行そのままです。ディスパッチャが読むのは`id`だけです。
//! - 返事は`{"id":1,"value":<任意のJSON>}`か`{"id":1,"error":"理由"}`です。
//! - 標準エラー出力に書いたものは、ワーカーの番号を付けてログに出ます。
//! - 標準入力が閉じたら終了します（ディスパッチャが終わった、または死んだという合図です）。

use std::io::{self, BufRead};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

// ANCHOR: protocol
/// 入力の1行であり、ワーカーへそのまま送る1行でもあるタスク。例: `{"id":1,"cpu":100000}`
#[derive(Debug, Clone)]
pub struct Task {
    pub id: u64,
    /// 入力の行そのもの。ディスパッチャは中身を解釈せず、ワーカーに渡すだけです
    pub line: Arc<str>,
}

impl Task {
    /// 1行を読みます。JSONのオブジェクトで、符号なし整数の`id`があればタスクです。
    pub fn parse(line: &str) -> Result<Task, String> {
        #[derive(Deserialize)]
        struct Head {
            id: u64,
        }
        if !line.trim_start().starts_with('{') {
            return Err("タスクはJSONのオブジェクトです".into());
        }
        let Head { id } = serde_json::from_str(line).map_err(|e| e.to_string())?;
        Ok(Task {
            id,
            line: line.into(),
        })
    }
}

/// ワーカーからの返事（1行）。`value`と`error`のどちらか一方だけがあります。
/// 例: `{"id":1,"value":385}`、`{"id":4,"error":"..."}`
#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// 返事の中身。値は解釈せずに、ワーカーが書いたJSONのまま結果へ書き写します。
#[derive(Debug)]
pub enum Answer {
    Value(Box<RawValue>),
    Error(String),
}

impl Reply {
    /// ワーカーの書いた1行を読みます。約束に合わない行は`Err`で、そのワーカーの障害になります。
    pub fn parse(line: &str) -> Result<(u64, Answer), String> {
        let reply: Reply = serde_json::from_str(line).map_err(|e| e.to_string())?;
        match (reply.value, reply.error) {
            (Some(value), None) => Ok((reply.id, Answer::Value(value))),
            (None, Some(error)) => Ok((reply.id, Answer::Error(error))),
            _ => Err("返事には`value`か`error`のどちらか1つが要ります".into()),
        }
    }
}

/// 標準出力に書く結果の1行。どのタスクも、ちょうど1回このどちらかで報告されます。
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Ok {
        id: u64,
        value: Box<RawValue>,
        worker: usize,
        /// このタスクを実行した回数（ワーカーを落とした回数＋1）
        attempts: u32,
        /// ほかのタスクの巻き添えで、実行されないまま渡し直された回数
        requeued: u32,
    },
    Failed {
        id: u64,
        error: String,
        attempts: u32,
        requeued: u32,
    },
}
// ANCHOR_END: protocol

// ANCHOR: read_line
/// 1行の長さの上限。改行を書かないワーカーや巨大な入力で、メモリを使い切らないためです。
pub const MAX_LINE: usize = 64 * 1024;

/// 改行までの1行を、`MAX_LINE`バイトまで読みます。入力の終わりなら`None`です。
pub async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    reader
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await?;
    finish_line(buf)
}

/// 入力ファイルと組み込みのワーカー用の同期版です。
pub fn read_line_blocking(reader: impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    reader
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    finish_line(buf)
}

fn finish_line(mut buf: Vec<u8>) -> io::Result<Option<String>> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE {
        let message = format!("1行が{MAX_LINE}バイトを超えています");
        return Err(io::Error::new(io::ErrorKind::InvalidData, message));
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
// ANCHOR_END: read_line

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded() {
        let mut ok = io::Cursor::new("a\nb".as_bytes());
        assert_eq!(read_line_blocking(&mut ok).unwrap().as_deref(), Some("a"));
        assert_eq!(read_line_blocking(&mut ok).unwrap().as_deref(), Some("b"));
        assert_eq!(read_line_blocking(&mut ok).unwrap(), None);
        let long = vec![b'x'; MAX_LINE + 10];
        let err = read_line_blocking(&mut io::Cursor::new(long)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_task_is_any_object_with_an_id_and_is_passed_on_verbatim() {
        let task = Task::parse(r#"{"id":3,"text":"こんにちは","n":[1,2]}"#).unwrap();
        assert_eq!(task.id, 3);
        assert_eq!(&*task.line, r#"{"id":3,"text":"こんにちは","n":[1,2]}"#);
        assert!(Task::parse(r#"{"text":"no id"}"#).is_err());
        assert!(Task::parse(r#"{"id":-1}"#).is_err());
        assert!(Task::parse("[1]").is_err());
        assert!(Task::parse(r#"{"id":1} trailing"#).is_err());
    }

    #[test]
    fn the_wire_format_is_the_documented_one() {
        let (id, answer) =
            Reply::parse(r#"{"id":1,"value":{"big":41666679166667500000}}"#).unwrap();
        let Answer::Value(value) = answer else {
            panic!("{answer:?}")
        };
        // 値は解釈しないので、u64に収まらない整数も書かれたとおりに残ります
        let ok = Outcome::Ok {
            id,
            value,
            worker: 0,
            attempts: 1,
            requeued: 0,
        };
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"status":"ok","id":1,"value":{"big":41666679166667500000},"worker":0,"attempts":1,"requeued":0}"#
        );
        assert!(matches!(
            Reply::parse(r#"{"id":4,"error":"x"}"#),
            Ok((4, Answer::Error(_)))
        ));
        assert!(Reply::parse(r#"{"id":4}"#).is_err());
        assert!(Reply::parse(r#"{"id":4,"value":1,"error":"x"}"#).is_err());
        assert!(Reply::parse("これはJSONではありません").is_err());
    }
}

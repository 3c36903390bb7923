//! 報告: 終わったファイルから順に、1つの書き手のスレッドが標準出力に書きます。

use std::io::{self, Write};
use std::time::Duration;

use crossbeam_channel::Receiver;
use indicatif::ProgressBar;

use crate::cli::Format;
use crate::record::{Record, Status};

// ANCHOR: writer
/// ワーカーと書き手の間のチャネルに待たせておける報告の数。書き手が遅れたら、ワーカーは送る所で待つ
pub const CHANNEL_CAPACITY: usize = 256;

/// 報告をチャネルから受け取った順に書き、1行ごとにflushする。
/// 途中で`kill -9`されても、それまでに変換を終えたファイルの報告は出力に残る
pub fn write_records(
    records: Receiver<Record>,
    format: Format,
    out: impl Write,
    progress: &ProgressBar,
) -> io::Result<Summary> {
    let mut sink = Sink::new(format, out);
    let mut summary = Summary::default();
    // すべての送信側がドロップされる（ワーカーが歩き終える）と、ループを抜けます。
    for record in records {
        sink.write(&record)?;
        if record.status == Status::Failed {
            let reason = record.reason.as_deref().unwrap_or("理由不明");
            progress.suspend(|| eprintln!("失敗: {}: {reason}", record.path));
        }
        summary.add(&record);
        progress.inc(1);
    }
    Ok(summary)
}

enum Sink<W: Write> {
    Jsonl(W),
    // csv::Writerは自分のバッファを持っていて大きいので、箱に入れます。
    Csv(Box<csv::Writer<W>>),
}

impl<W: Write> Sink<W> {
    fn new(format: Format, out: W) -> Self {
        match format {
            Format::Jsonl => Sink::Jsonl(out),
            Format::Csv => Sink::Csv(Box::new(csv::Writer::from_writer(out))),
        }
    }

    fn write(&mut self, record: &Record) -> io::Result<()> {
        match self {
            Sink::Jsonl(out) => {
                serde_json::to_writer(&mut *out, record)?;
                out.write_all(b"\n")?;
                out.flush()
            }
            Sink::Csv(csv) => {
                csv.serialize(record)?;
                csv.flush()
            }
        }
    }
}
// ANCHOR_END: writer

// ANCHOR: summary
/// 要約: 状態ごとの数と、行・文字・バイトの合計。報告の行そのものは持たない
#[derive(Default)]
pub struct Summary {
    counts: [usize; 6],
    pub items: usize,
    pub lines: u64,
    pub chars: u64,
    pub bytes: u64,
}

impl Summary {
    fn add(&mut self, record: &Record) {
        self.counts[record.status as usize] += 1;
        self.items += 1;
        self.lines += record.lines.unwrap_or(0);
        self.chars += record.chars.unwrap_or(0);
        self.bytes += record.bytes.unwrap_or(0);
    }

    pub fn count(&self, status: Status) -> usize {
        self.counts[status as usize]
    }

    /// 標準エラーに2行の要約を書く
    pub fn print(&self, statuses: [Status; 4], elapsed: Duration) {
        let counts: Vec<String> = statuses
            .iter()
            .map(|&s| format!("{} {}", s.label(), self.count(s)))
            .collect();
        eprintln!("{}（{}項目）", counts.join("、"), self.items);
        eprintln!(
            "{}行・{}文字・{}バイトを{elapsed:.2?}で処理しました",
            self.lines, self.chars, self.bytes
        );
    }
}
// ANCHOR_END: summary

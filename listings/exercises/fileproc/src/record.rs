//! 報告の1行と、状態の種類。

use std::path::Path;

use serde::Serialize;

use crate::decode::TextInfo;
use crate::sniff::Detected;

// ANCHOR: record
#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Text,
    Binary,
    Converted,
    Unchanged,
    Skipped,
    Failed,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Text => "テキスト",
            Status::Binary => "バイナリ",
            Status::Converted => "変換",
            Status::Unchanged => "変更なし",
            Status::Skipped => "スキップ",
            Status::Failed => "失敗",
        }
    }
}

/// 要約に並べる状態（モードごと）
pub const STATS: [Status; 4] = [
    Status::Text,
    Status::Binary,
    Status::Skipped,
    Status::Failed,
];
pub const CONVERT: [Status; 4] = [
    Status::Converted,
    Status::Unchanged,
    Status::Skipped,
    Status::Failed,
];

/// 報告の1行（JSON Linesの1行、CSVの1行）。分からない欄は空（`null`）
#[derive(Serialize)]
pub struct Record {
    pub path: String,
    pub status: Status,
    pub encoding: Option<&'static str>,
    pub bom: Option<bool>,
    pub newline: Option<&'static str>,
    pub lines: Option<u64>,
    pub chars: Option<u64>,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
    pub reason: Option<String>,
}

impl Record {
    pub fn new(rel: &Path, status: Status) -> Self {
        Record {
            path: rel.display().to_string(),
            status,
            encoding: None,
            bom: None,
            newline: None,
            lines: None,
            chars: None,
            bytes: None,
            sha256: None,
            reason: None,
        }
    }

    pub fn with_text(mut self, detected: Detected, info: &TextInfo) -> Self {
        self.encoding = Some(detected.encoding.name());
        self.bom = Some(detected.bom_len > 0);
        self.newline = Some(info.newline());
        self.lines = Some(info.lines());
        self.chars = Some(info.chars);
        self
    }

    pub fn because(mut self, reason: impl ToString) -> Self {
        self.reason = Some(reason.to_string());
        self
    }
}
// ANCHOR_END: record

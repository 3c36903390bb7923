//! 出力の1行（`Record`）と、URLごとの結果の種類（`Outcome`）

use serde::Serialize;

// ANCHOR: record
/// 出力の1行。どのURLも、どう終わったかにかかわらず、ちょうど1行になります
#[derive(Serialize)]
pub(crate) struct Record {
    /// 取得したURL（正規化したもの）
    pub(crate) url: String,
    /// 開始URLからリンクをたどった回数
    pub(crate) depth: u32,
    pub(crate) outcome: Outcome,
    pub(crate) status: Option<u16>,
    /// リダイレクトをたどった後のURL
    pub(crate) final_url: Option<String>,
    pub(crate) content_type: Option<String>,
    /// 読んだ本文のバイト数（HTML以外は本文を読まないので、Content-Lengthの値）
    pub(crate) bytes: Option<u64>,
    /// 本文が`--max-bytes`を超えたので、途中で読むのをやめた
    pub(crate) truncated: bool,
    /// 最後の試行で、リクエストを送ってから本文を読み終えるまでの時間
    pub(crate) elapsed_ms: Option<u64>,
    /// 試行の回数（やり直しを含む）
    pub(crate) attempts: u32,
    pub(crate) title: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) h1: Vec<String>,
    /// `<a href>`の数
    pub(crate) links: Option<usize>,
    /// たどらなかったリダイレクトの行き先（そのURLは改めて取得します）
    pub(crate) redirect: Option<String>,
    pub(crate) error: Option<String>,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// HTMLを取得して解析した
    Page,
    /// HTML以外（画像やCSVなど）。本文は読みません
    File,
    /// 別のホストへの（またはrobots.txtで禁止されたパスへの）リダイレクト
    Redirect,
    /// 4xxや5xxが返ってきた
    HttpError,
    /// 接続できない、タイムアウト、リダイレクトのループなど
    Error,
    /// robots.txtで禁止されているので、取得しなかった
    Blocked,
}
// ANCHOR_END: record

impl Record {
    pub(crate) fn new(url: &str, depth: u32) -> Self {
        Record {
            url: url.to_owned(),
            depth,
            outcome: Outcome::Error,
            status: None,
            final_url: None,
            content_type: None,
            bytes: None,
            truncated: false,
            elapsed_ms: None,
            attempts: 0,
            title: None,
            description: None,
            h1: Vec::new(),
            links: None,
            redirect: None,
            error: None,
        }
    }

    pub(crate) fn failed(mut self, outcome: Outcome, error: String) -> Self {
        self.outcome = outcome;
        self.error = Some(error);
        self
    }
}

//! 1ファイルの処理が失敗した理由。

use std::fmt;
use std::io;

use encoding_rs::Encoding;

// ANCHOR: failure
/// 1ファイルの処理が失敗した理由（どのファイルかは報告の行が持つ）
#[derive(Debug)]
pub enum Failure {
    Read(io::Error),
    Write(io::Error),
    Undetected(&'static Encoding),
    Malformed {
        encoding: &'static Encoding,
        offset: u64,
    },
    /// `--to`の文字コードにない文字
    Unmappable {
        ch: char,
        encoding: &'static Encoding,
    },
    Changed,
    /// `--in-place`で、ほかの名前（ハードリンク）からも指されているファイル
    HardLinks(u64),
    Interrupted,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Read(e) => write!(f, "読み込めません: {e}"),
            Failure::Write(e) => write!(f, "書き込めません: {e}"),
            Failure::Undetected(guess) => write!(
                f,
                "文字コードを判定できません（推定は{}）。--fromで指定してください",
                guess.name()
            ),
            Failure::Malformed { encoding, offset } => write!(
                f,
                "オフセット{offset}に{}として不正なバイト列があります。--fromで文字コードを指定できます",
                encoding.name()
            ),
            Failure::Unmappable { ch, encoding } => write!(
                f,
                "{}にない文字{ch:?}（U+{:04X}）があります",
                encoding.name(),
                u32::from(*ch)
            ),
            Failure::Changed => write!(
                f,
                "処理中にほかのプログラムが変更したので、置き換えませんでした"
            ),
            Failure::HardLinks(n) => write!(
                f,
                "ハードリンクが{n}個あるので、置き換えませんでした（置き換えるとリンクが切れます。--forceで置き換えます）"
            ),
            Failure::Interrupted => write!(f, "中断したので、変換していません"),
        }
    }
}
// ANCHOR_END: failure

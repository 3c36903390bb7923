//! 練習問題2の解答例: テキストファイルの木を並列に処理するツール`fileproc`のライブラリです。
//!
//! - `fileproc stats DIR` — ファイルごとの文字コード・改行・行数・文字数・バイト数・SHA-256を
//!   JSON Lines（既定）かCSV（`--format csv`）で標準出力に書き、合計を標準エラーに出します。
//! - `fileproc convert SRC DST` — SRCの木をDSTに写しながら、Shift_JIS（CP932）・EUC-JP・
//!   ISO-2022-JP・BOM付きUTF-8・UTF-16とCRLFのテキストをUTF-8＋LFに変換します。
//!   `--in-place`はその場で置き換え、`--check`は何も書かずに変換の要るファイルを探します。
//!
//! 木はripgrepと同じ`ignore`クレートで並列に歩き（`.gitignore`と隠しファイルは飛ばします）、
//! 歩くスレッドがそのままファイルを処理して、報告をチャネルで1つの書き手に送ります。
//! 書き手は終わった順に1行ずつ書いてflushするので、メモリは木の大きさによらず一定です。

pub mod app;
pub mod cli;
pub mod convert;
pub mod decode;
pub mod failure;
pub mod record;
pub mod report;
pub mod sniff;
pub mod stats;
pub mod stop;
pub mod target;
pub mod walk;

pub use app::{Outcome, run};
pub use cli::Cli;

//! コマンドラインの定義（clapのderive）。

use std::num::NonZeroUsize;
use std::path::PathBuf;

use bytesize::ByteSize;
use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use encoding_rs::Encoding;
use globset::Glob;

// ANCHOR: cli
/// テキストファイルの木をUTF-8＋LFにそろえ、統計を取ります。
#[derive(Parser)]
#[command(version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// 並列に処理するスレッドの数（既定: CPUの数）
    #[arg(short, long, global = true, value_name = "N")]
    pub jobs: Option<NonZeroUsize>,
    /// 処理するファイルのグロブ。ルートからの相対パスと照合します（複数指定可）
    #[arg(short, long, global = true, value_name = "GLOB", value_parser = Glob::new)]
    pub include: Vec<Glob>,
    /// 除外するファイルやディレクトリのグロブ（複数指定可）
    #[arg(short, long, global = true, value_name = "GLOB", value_parser = Glob::new)]
    pub exclude: Vec<Glob>,
    /// 隠しファイルと隠しディレクトリ（名前が`.`で始まるもの）も処理します
    #[arg(long, global = true)]
    pub hidden: bool,
    /// .gitignoreや.ignoreに書かれたファイルも処理します
    #[arg(long, global = true)]
    pub no_ignore: bool,
    /// これより大きいファイルはスキップします（例: 100MiB、1.5GB）
    #[arg(long, global = true, value_name = "SIZE")]
    pub max_size: Option<ByteSize>,
    /// 文字コードを判定せず、この文字コードとして読みます（例: cp932、euc-jp、utf-16le）
    #[arg(long, global = true, value_name = "ENCODING", value_parser = parse_encoding)]
    pub from: Option<&'static Encoding>,
    /// 標準出力に書く報告の形式
    #[arg(long, global = true, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// 詳しいログを標準エラーに出します（-vvでさらに詳しく）
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// 要約と進み具合を出さず、エラーだけを出します
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// ファイルごとの行数・文字数・バイト数・SHA-256を数えます
    Stats {
        /// 調べるディレクトリ
        dir: PathBuf,
    },
    /// テキストファイルをUTF-8＋LF（--to、--eolで変えられます）に変換します
    Convert {
        /// 変換元のディレクトリ
        src: PathBuf,
        /// 変換先のディレクトリ（SRCと同じ構造で書き出します。SRCと重なってはいけません）
        #[arg(required_unless_present_any = ["in_place", "check"])]
        dst: Option<PathBuf>,
        /// 変換先を作らず、SRCのファイルをその場で置き換えます
        #[arg(long, conflicts_with = "dst")]
        in_place: bool,
        /// 何も書き込まずに、何が起きるかだけを報告します
        #[arg(long)]
        dry_run: bool,
        /// 何も書き込まず、変換の要るファイルか失敗するファイルがあれば終了コード1で終わります（CI向け）
        #[arg(long, conflicts_with = "dst")]
        check: bool,
        /// --in-placeで、ハードリンクが複数あるファイルも置き換えます（このパスだけが新しいファイルになります）
        #[arg(long)]
        force: bool,
        /// 出力の文字コード（nkfの-w、-s、-eに当たります。例: utf-8、cp932、euc-jp）
        #[arg(long, value_name = "ENCODING", default_value = "utf-8", value_parser = parse_output_encoding)]
        to: &'static Encoding,
        /// 出力の改行（nkfの-Lu、-Lwに当たります）
        #[arg(long, value_enum, default_value_t = Eol::Lf)]
        eol: Eol,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
}

/// 出力の改行
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Eol {
    Lf,
    Crlf,
}

pub fn parse_encoding(label: &str) -> Result<&'static Encoding, String> {
    // `cp932`はWHATWGのラベルにないので、同じ符号化（Windows-31J）として探します。
    let known = if label.eq_ignore_ascii_case("cp932") {
        "windows-31j"
    } else {
        label
    };
    Encoding::for_label(known.as_bytes()).ok_or_else(|| format!("知らない文字コードです: {label}"))
}

fn parse_output_encoding(label: &str) -> Result<&'static Encoding, String> {
    let encoding = parse_encoding(label)?;
    // encoding_rsはWebの標準に従い、UTF-16への書き出しをUTF-8で行うので、ここで断ります。
    if encoding.output_encoding() != encoding {
        return Err(format!("{}では書き出せません", encoding.name()));
    }
    Ok(encoding)
}
// ANCHOR_END: cli

#[cfg(test)]
mod tests {
    use super::*;
    use encoding_rs::{EUC_JP, SHIFT_JIS, UTF_8, UTF_16LE};

    #[test]
    fn cp932_is_accepted_as_a_label() {
        assert_eq!(parse_encoding("CP932"), Ok(SHIFT_JIS));
        assert_eq!(parse_encoding("euc-jp"), Ok(EUC_JP));
        assert!(parse_encoding("no-such-encoding").is_err());
    }

    #[test]
    fn utf16_can_be_read_but_not_written() {
        assert_eq!(parse_encoding("utf-16le"), Ok(UTF_16LE));
        assert!(parse_output_encoding("utf-16le").is_err());
        assert_eq!(parse_output_encoding("utf-8"), Ok(UTF_8));
        assert_eq!(parse_output_encoding("cp932"), Ok(SHIFT_JIS));
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

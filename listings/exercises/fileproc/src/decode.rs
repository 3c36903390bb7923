//! 少しずつデコードし、改行をLFにそろえながら、文字数と改行を数えます。

use std::io::{self, Read};

use encoding_rs::DecoderResult;

use crate::cli::Eol;
use crate::failure::Failure;
use crate::sniff::{CHUNK_LEN, Detected};

// ANCHOR: crlf
/// デコードしたテキスト（改行はLFにそろえた後）について数えたこと
#[derive(Default)]
pub struct TextInfo {
    pub chars: u64,
    pub newlines: u64,
    /// 元のテキストにあったCRLFの数
    pub crlf: u64,
    ends_with_newline: bool,
}

impl TextInfo {
    fn count(&mut self, text: &str) {
        if let Some(last) = text.chars().next_back() {
            self.chars += text.chars().count() as u64;
            self.newlines += text.bytes().filter(|&b| b == b'\n').count() as u64;
            self.ends_with_newline = last == '\n';
        }
    }

    /// 最後の行が改行で終わっていなくても、1行と数える
    pub fn lines(&self) -> u64 {
        self.newlines + u64::from(self.chars > 0 && !self.ends_with_newline)
    }

    pub fn newline(&self) -> &'static str {
        match (self.crlf, self.newlines - self.crlf) {
            (0, 0) => "none",
            (_, 0) => "CRLF",
            (0, _) => "LF",
            _ => "mixed",
        }
    }

    /// 改行がもう`eol`にそろっているか（改行がなければそろっている）
    pub fn has_eol(&self, eol: Eol) -> bool {
        match eol {
            Eol::Lf => self.crlf == 0,
            Eol::Crlf => self.crlf == self.newlines,
        }
    }
}

/// CRLFをLFに置き換える。CRとLFが読み込みの境目で分かれても正しく扱う
#[derive(Default)]
pub struct CrLf {
    pending_cr: bool,
    count: u64,
}

impl CrLf {
    pub fn convert(&mut self, mut text: &str, out: &mut String) {
        if self.pending_cr && !text.is_empty() {
            self.pending_cr = false;
            match text.strip_prefix('\n') {
                Some(rest) => {
                    self.count += 1;
                    out.push('\n');
                    text = rest;
                }
                None => out.push('\r'),
            }
        }
        while let Some(i) = text.find('\r') {
            out.push_str(&text[..i]);
            let after = &text[i + 1..];
            if let Some(rest) = after.strip_prefix('\n') {
                self.count += 1;
                out.push('\n');
                text = rest;
            } else if after.is_empty() {
                self.pending_cr = true; // LFが次の読み込みの先頭にあるかもしれない
                text = after;
            } else {
                out.push('\r'); // 単独のCRは変えない
                text = after;
            }
        }
        out.push_str(text);
    }

    /// 入力の終わり: 保留していたCRにはLFが続かなかったので、そのまま出す
    pub fn finish(&mut self, out: &mut String) {
        if std::mem::take(&mut self.pending_cr) {
            out.push('\r');
        }
    }
}
// ANCHOR_END: crlf

// ANCHOR: decode
/// `head`（読み済みの先頭）と`rest`（残り）を`CHUNK_LEN`ずつデコードし、
/// 改行をLFにそろえたテキストを少しずつ`sink`に渡す。不正なバイト列があればそこで失敗する
pub fn decode(
    detected: Detected,
    head: &[u8],
    mut rest: impl Read,
    mut sink: impl FnMut(&str) -> Result<(), Failure>,
) -> Result<TextInfo, Failure> {
    let Detected { encoding, bom_len } = detected;
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let (mut crlf, mut info) = (CrLf::default(), TextInfo::default());
    let (mut decoded, mut text) = (String::new(), String::new());
    let mut buf = vec![0; CHUNK_LEN];
    let mut input = &head[bom_len..];
    let mut offset = bom_len as u64; // 失敗した位置を報告するため
    loop {
        let last = input.is_empty(); // 読んでも0バイトなら、ファイルの終わり
        loop {
            decoded.clear();
            let needed = decoder.max_utf8_buffer_length_without_replacement(input.len());
            decoded.reserve(needed.expect("CHUNK_LEN程度の長さでは桁あふれしない"));
            let (result, read) =
                decoder.decode_to_string_without_replacement(input, &mut decoded, last);
            input = &input[read..];
            offset += read as u64;
            crlf.convert(&decoded, &mut text);
            if last && matches!(result, DecoderResult::InputEmpty) {
                crlf.finish(&mut text);
            }
            info.count(&text);
            sink(&text)?;
            text.clear();
            match result {
                DecoderResult::InputEmpty => break,
                DecoderResult::OutputFull => continue,
                DecoderResult::Malformed(bad, after) => {
                    let offset = offset - u64::from(bad) - u64::from(after);
                    return Err(Failure::Malformed { encoding, offset });
                }
            }
        }
        if last {
            info.crlf = crlf.count;
            return Ok(info);
        }
        input = read_chunk(&mut rest, &mut buf).map_err(Failure::Read)?;
    }
}

pub fn read_chunk<'b>(input: &mut impl Read, buf: &'b mut [u8]) -> io::Result<&'b [u8]> {
    loop {
        match input.read(buf) {
            Ok(n) => return Ok(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
// ANCHOR_END: decode

#[cfg(test)]
mod tests {
    use super::*;

    /// どこで読み込みが区切られても、CRLFの変換と数え方は変わらない
    #[test]
    fn crlf_split_anywhere_gives_the_same_text() {
        let input = "a\r\nb\rc\r\n\r\nd\r";
        let whole = {
            let (mut crlf, mut out) = (CrLf::default(), String::new());
            crlf.convert(input, &mut out);
            crlf.finish(&mut out);
            assert_eq!(crlf.count, 3);
            out
        };
        assert_eq!(whole, "a\nb\rc\n\nd\r");
        for i in 0..=input.len() {
            let (mut crlf, mut out) = (CrLf::default(), String::new());
            crlf.convert(&input[..i], &mut out);
            crlf.convert("", &mut out);
            crlf.convert(&input[i..], &mut out);
            crlf.finish(&mut out);
            assert_eq!(out, whole, "split at {i}");
            assert_eq!(crlf.count, 3, "split at {i}");
        }
    }

    #[test]
    fn lines_and_newline_kinds() {
        let mut info = TextInfo::default();
        info.count("一行目\n二行目");
        assert_eq!((info.lines(), info.chars, info.newline()), (2, 7, "LF"));
        assert!(info.has_eol(Eol::Lf) && !info.has_eol(Eol::Crlf));
        info.crlf = 1;
        assert_eq!(info.newline(), "CRLF");
        assert!(!info.has_eol(Eol::Lf) && info.has_eol(Eol::Crlf));
        assert_eq!(TextInfo::default().lines(), 0);
        assert!(TextInfo::default().has_eol(Eol::Crlf));
    }
}

//! ファイルの先頭を見て、バイナリか、テキストならどの文字コードかを決めます。

use std::io::Read;

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{EUC_JP, Encoding, ISO_2022_JP, SHIFT_JIS, UTF_8, UTF_16BE, UTF_16LE};

use crate::failure::Failure;

// ANCHOR: sniff
/// 文字コードとバイナリの判定に使う先頭の大きさ。読み書きもこの単位で行う
pub const CHUNK_LEN: usize = 64 * 1024;

/// 文字コードの推定に使う長さ
const DETECT_LEN: usize = 4 * 1024;

/// 中身の種類。テキストなら、文字コードと先頭のBOMの長さ
pub enum Content {
    Binary,
    Text(Detected),
}

#[derive(Clone, Copy)]
pub struct Detected {
    pub encoding: &'static Encoding,
    pub bom_len: usize,
}

impl Content {
    /// BOMのないテキスト
    fn text(encoding: &'static Encoding) -> Self {
        Content::Text(Detected {
            encoding,
            bom_len: 0,
        })
    }
}

/// 先頭を最大`CHUNK_LEN`バイト読む。2つ目の値は、ファイルを最後まで読んだかどうか
pub fn read_head(input: &mut impl Read) -> Result<(Vec<u8>, bool), Failure> {
    let mut head = Vec::with_capacity(CHUNK_LEN);
    input
        .by_ref()
        .take(CHUNK_LEN as u64)
        .read_to_end(&mut head)
        .map_err(Failure::Read)?;
    let whole = head.len() < CHUNK_LEN;
    Ok((head, whole))
}

pub fn sniff(
    head: &[u8],
    whole: bool,
    from: Option<&'static Encoding>,
) -> Result<Content, Failure> {
    // BOMがあれば従います。UTF-16はNULを含むので、バイナリの判定より先に見ます。
    if let Some((encoding, bom_len)) = Encoding::for_bom(head) {
        return Ok(Content::Text(Detected { encoding, bom_len }));
    }
    // BOMのないUTF-16も、指定されたならNULの検査をせずに読みます（ASCIIの文字の半分はNULです）。
    if let Some(encoding) = from.filter(|&e| e == UTF_16LE || e == UTF_16BE) {
        return Ok(Content::text(encoding));
    }
    // gitと同じく、先頭8000バイトにNULがあればバイナリとみなします。
    if head.iter().take(8000).any(|&b| b == 0) {
        return Ok(Content::Binary);
    }
    if let Some(encoding) = from {
        return Ok(Content::text(encoding));
    }
    // 多くのファイルはもうUTF-8なので、速い検査で先に見分けます（ISO-2022-JPはESCを含むので除きます）。
    let utf8 = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => !whole && e.error_len().is_none(), // 先頭の末尾で1文字が切れただけ
    };
    if utf8 && !head.contains(&0x1B) {
        return Ok(Content::text(UTF_8));
    }
    // chardetngは1秒に十数MBしか読めないので、最初の非ASCII文字から`DETECT_LEN`バイトだけ渡します。
    let start = head.iter().position(|b| !b.is_ascii()).unwrap_or(0);
    let end = head.len().min(start + DETECT_LEN);
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Allow);
    detector.feed(&head[start..end], whole && end == head.len());
    // `.jp`のページと同じく、日本語の文字コードを優先して推定させます。
    let encoding = detector.guess(Some(b"jp"), Utf8Detection::Allow);
    // それ以外の推定は外れている恐れがあるので、化けた文字を書く代わりに失敗にします。
    if [UTF_8, SHIFT_JIS, EUC_JP, ISO_2022_JP].contains(&encoding) {
        Ok(Content::text(encoding))
    } else {
        Err(Failure::Undetected(encoding))
    }
}
// ANCHOR_END: sniff

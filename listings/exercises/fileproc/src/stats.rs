//! `stats`: 1ファイルを1回読むだけで、SHA-256とテキストの統計を取ります。

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use encoding_rs::Encoding;
use sha2::{Digest, Sha256};

use crate::decode::decode;
use crate::failure::Failure;
use crate::record::{Record, Status};
use crate::sniff::{Content, read_head, sniff};

// ANCHOR: stats
/// 読んだバイトを数えながらSHA-256に通すリーダー
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    fn hex_digest(self) -> String {
        self.hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// 1ファイルを先頭から一度だけ読み、ハッシュとテキストの統計を同時に取る
pub fn stats_file(
    root: &Path,
    rel: &Path,
    from: Option<&'static Encoding>,
) -> Result<Record, Failure> {
    let file = File::open(root.join(rel)).map_err(Failure::Read)?;
    let mut input = Hashing::new(file);
    let (head, whole) = read_head(&mut input)?;
    let mut record = match sniff(&head, whole, from)? {
        Content::Binary => {
            io::copy(&mut input, &mut io::sink()).map_err(Failure::Read)?; // 残りもハッシュに通す
            Record::new(rel, Status::Binary)
        }
        Content::Text(detected) => {
            let info = decode(detected, &head, &mut input, |_| Ok(()))?;
            Record::new(rel, Status::Text).with_text(detected, &info)
        }
    };
    record.bytes = Some(input.bytes);
    record.sha256 = Some(input.hex_digest());
    Ok(record)
}
// ANCHOR_END: stats

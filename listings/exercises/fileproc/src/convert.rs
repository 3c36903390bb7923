//! `convert`: 1ファイルを変換し、書きかけを残さずに書き出します。

use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Seek, Write};
use std::path::Path;

use encoding_rs::{Encoder, EncoderResult, Encoding, UTF_8};
use tracing::{debug, warn};

use crate::cli::Eol;
use crate::decode::{TextInfo, decode};
use crate::failure::Failure;
use crate::record::{Record, Status};
use crate::sniff::{CHUNK_LEN, Content, read_head, sniff};
use crate::stop;
use crate::target::Target;
use crate::walk::{TEMP_PREFIX, TEMP_SUFFIX};

/// 変換のしかた（`convert`のオプション）
pub struct ConvertOptions {
    pub from: Option<&'static Encoding>,
    pub to: &'static Encoding,
    pub eol: Eol,
    /// 何も書かない（`--dry-run`と`--check`）
    pub dry_run: bool,
    /// ハードリンクが複数あっても置き換える
    pub force: bool,
}

// ANCHOR: output
/// LFにそろえたテキストを受け取り、`--eol`の改行と`--to`の文字コードにして`out`に書く
struct Output<W> {
    out: W,
    crlf: bool,
    /// UTF-8に書くときは`None`（テキストをそのまま書く）
    encoder: Option<Encoder>,
    text: String,
    bytes: Vec<u8>,
}

impl<W: Write> Output<W> {
    fn new(out: W, to: &'static Encoding, eol: Eol) -> Self {
        Output {
            out,
            crlf: eol == Eol::Crlf,
            encoder: (to != UTF_8).then(|| to.new_encoder()),
            text: String::new(),
            bytes: Vec::new(),
        }
    }

    fn write(&mut self, text: &str) -> Result<(), Failure> {
        if stop::requested() {
            return Err(Failure::Interrupted); // 大きなファイルの途中でも止まる（一時ファイルは消える）
        }
        let Output {
            out,
            crlf,
            encoder,
            text: scratch,
            bytes,
        } = self;
        let text = if *crlf {
            scratch.clear();
            for (i, line) in text.split('\n').enumerate() {
                if i > 0 {
                    scratch.push_str("\r\n");
                }
                scratch.push_str(line);
            }
            scratch.as_str()
        } else {
            text
        };
        match encoder {
            None => out.write_all(text.as_bytes()).map_err(Failure::Write),
            Some(encoder) => encode(encoder, text, false, bytes, out),
        }
    }

    /// 最後まで書く（ISO-2022-JPなら、ASCIIに戻すエスケープシーケンスもここで書く）
    fn finish(mut self) -> Result<W, Failure> {
        if let Some(encoder) = &mut self.encoder {
            encode(encoder, "", true, &mut self.bytes, &mut self.out)?;
        }
        Ok(self.out)
    }
}

fn encode(
    encoder: &mut Encoder,
    mut text: &str,
    last: bool,
    bytes: &mut Vec<u8>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    loop {
        bytes.clear();
        bytes.reserve(CHUNK_LEN);
        let (result, read) = encoder.encode_from_utf8_to_vec_without_replacement(text, bytes, last);
        text = &text[read..];
        out.write_all(bytes).map_err(Failure::Write)?;
        match result {
            EncoderResult::InputEmpty => return Ok(()),
            EncoderResult::OutputFull => continue,
            EncoderResult::Unmappable(ch) => {
                let encoding = encoder.encoding();
                return Err(Failure::Unmappable { ch, encoding });
            }
        }
    }
}
// ANCHOR_END: output

// ANCHOR: convert
pub fn convert_file(
    target: &Target,
    options: &ConvertOptions,
    rel: &Path,
) -> Result<Record, Failure> {
    let src = target.src.join(rel);
    let mut file = File::open(&src).map_err(Failure::Read)?;
    let before = file.metadata().map_err(Failure::Read)?;
    let (head, whole) = read_head(&mut file)?;
    let Content::Text(detected) = sniff(&head, whole, options.from)? else {
        return Ok(Record::new(rel, Status::Skipped).because("バイナリ"));
    };
    let in_place = target.dst.is_none();
    let record = |info: &TextInfo| -> Result<Record, Failure> {
        let changed =
            detected.encoding != options.to || detected.bom_len > 0 || !info.has_eol(options.eol);
        if changed && in_place && !options.force {
            refuse_hard_links(&before)?; // --dry-runでも、本番と同じ報告になるように
        }
        let status = if changed {
            Status::Converted
        } else {
            Status::Unchanged
        };
        let mut record = Record::new(rel, status).with_text(detected, info);
        record.bytes = Some(before.len());
        Ok(record)
    };
    if options.dry_run {
        // 書き込まないだけで、最後まで変換します。失敗するファイルも本番と同じく分かります。
        let mut output = Output::new(io::sink(), options.to, options.eol);
        let info = decode(detected, &head, file, |text| output.write(text))?;
        output.finish()?;
        return record(&info);
    }
    let dst = match &target.dst {
        Some(dst) => dst.join(rel),
        None => src.clone(), // --in-place
    };
    // 一時ファイルは書き出し先と同じディレクトリに作ります。renameで付け替えられるのは
    // 同じファイルシステムの中だけだからです（別のファイルシステムへはEXDEVで失敗します）。
    let dir = dst.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(Failure::Write)?;
    let temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(Failure::Write)?;
    let buffered = BufWriter::with_capacity(CHUNK_LEN, temp);
    let mut output = Output::new(buffered, options.to, options.eol);
    // ここで`?`で抜けると`temp`がドロップされ、書きかけの一時ファイルは消えます。
    let info = decode(detected, &head, file, |text| output.write(text))?;
    let mut temp = output
        .finish()?
        .into_inner()
        .map_err(|e| Failure::Write(e.into_error()))?;
    let record = record(&info)?;
    if record.status == Status::Unchanged {
        if in_place {
            return Ok(record); // 元のファイルには触らない（一時ファイルは消える）
        }
        if options.to != UTF_8 {
            // デコードして符号化し直すと、同じ文字でもバイト列が変わることがあるので、元のまま写します。
            copy_verbatim(&src, temp.as_file_mut()).map_err(Failure::Write)?;
        }
    }
    if in_place {
        keep_metadata(temp.as_file(), &before, &src)?;
        // 元の中身を置き換える前に、新しい中身がディスクに届いたことを確かめます。
        temp.as_file().sync_all().map_err(Failure::Write)?;
        ensure_unchanged(&src, &before)?;
    } else {
        fs::set_permissions(temp.path(), before.permissions()).map_err(Failure::Write)?;
    }
    // 名前の付け替え（rename）はアトミックです。読み手には古い中身か新しい中身のどちらかが見えます。
    temp.persist(&dst).map_err(|e| Failure::Write(e.error))?;
    if in_place {
        // renameはディレクトリの書き換えなので、ディレクトリもディスクに届けます。
        if let Err(error) = sync_dir(dir) {
            warn!(
                "{}: ディレクトリをディスクに書き出せません: {error}",
                dir.display()
            );
        }
    }
    debug!("{}: {}", rel.display(), record.status.label());
    Ok(record)
}

/// 読み始めてから置き換えるまでの間に、ほかのプログラムが元のファイルを書き換えていないか
fn ensure_unchanged(path: &Path, before: &Metadata) -> Result<(), Failure> {
    let now = fs::metadata(path).map_err(Failure::Read)?;
    if now.len() != before.len() || now.modified().ok() != before.modified().ok() {
        return Err(Failure::Changed);
    }
    Ok(())
}

fn copy_verbatim(src: &Path, temp: &mut File) -> io::Result<()> {
    temp.set_len(0)?;
    temp.rewind()?;
    io::copy(&mut File::open(src)?, temp)?;
    Ok(())
}
// ANCHOR_END: convert

// ANCHOR: keep
/// 置き換えるとハードリンクが切れる（ほかの名前は古い中身のまま残る）ので、断る
#[cfg(unix)]
fn refuse_hard_links(before: &Metadata) -> Result<(), Failure> {
    use std::os::unix::fs::MetadataExt;
    match before.nlink() {
        links @ 2.. => Err(Failure::HardLinks(links)),
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
fn refuse_hard_links(_before: &Metadata) -> Result<(), Failure> {
    Ok(())
}

/// 新しい中身（一時ファイル）に、元のファイルの持ち主・パーミッション・更新時刻を写す
#[cfg_attr(not(unix), allow(unused_variables))]
fn keep_metadata(temp: &File, before: &Metadata, src: &Path) -> Result<(), Failure> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, fchown};
        // root以外は、ファイルを他人のものにはできません。そのときはグループだけでも保ちます。
        if fchown(temp, Some(before.uid()), Some(before.gid())).is_err()
            && fchown(temp, None, Some(before.gid())).is_err()
        {
            warn!("{}: 持ち主を保てませんでした", src.display());
        }
    }
    // 持ち主を変えるとset-user-IDなどのビットが消えることがあるので、パーミッションはその後に写します。
    temp.set_permissions(before.permissions())
        .map_err(Failure::Write)?;
    let mut times = fs::FileTimes::new();
    if let (Ok(accessed), Ok(modified)) = (before.accessed(), before.modified()) {
        times = times.set_accessed(accessed).set_modified(modified);
        temp.set_times(times).map_err(Failure::Write)?;
    }
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
// ANCHOR_END: keep

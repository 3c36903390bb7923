//! 変換の書き出し先と、変換元と重ならないことの検査。

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

// ANCHOR: overlap
/// 変換の書き出し先。`dst`が`None`なら`--in-place`
pub struct Target {
    pub src: PathBuf,
    pub dst: Option<PathBuf>,
}

impl Target {
    /// `dst`が`src`と重なっていれば（どちらかがもう一方の中にあれば）断る
    pub fn new(src: PathBuf, dst: Option<PathBuf>) -> Result<Self, String> {
        if let Some(dst) = &dst {
            let src_real = fs::canonicalize(&src).map_err(|e| format!("{}: {e}", src.display()))?;
            let dst_real = resolve(dst).map_err(|e| format!("{}: {e}", dst.display()))?;
            let (src, dst) = (src.display(), dst.display());
            if dst_real.starts_with(&src_real) {
                return Err(format!(
                    "変換先{dst}が変換元{src}の中にあります（その場で置き換えるなら--in-placeを使います）"
                ));
            }
            if src_real.starts_with(&dst_real) {
                return Err(format!(
                    "変換元{src}が変換先{dst}の中にあります（変換元のファイルを上書きするおそれがあります）"
                ));
            }
        }
        Ok(Target { src, dst })
    }

    /// 一時ファイルを作るディレクトリの木（前回の残りを探すところ）
    pub fn written_root(&self) -> &Path {
        self.dst.as_deref().unwrap_or(&self.src)
    }
}

/// まだないかもしれないパスを、本物の絶対パスにする。あるところまでは1段ずつ
/// シンボリックリンクを解決し（リンクの先での`..`もカーネルと同じに扱うため）、ない部分はそのまま足す
fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut resolved = PathBuf::new();
    for component in std::path::absolute(path)?.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                resolved.pop();
            }
            other => {
                resolved.push(other);
                match fs::canonicalize(&resolved) {
                    Ok(real) => resolved = real,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(resolved)
}
// ANCHOR_END: overlap

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolve_follows_symlinks_up_to_the_missing_part() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        fs::create_dir_all(root.join("a/b")).unwrap();
        symlink(root.join("a/b"), root.join("link")).unwrap();
        assert_eq!(
            resolve(&root.join("link/new/x")).unwrap(),
            root.join("a/b/new/x")
        );
        // リンクの先から`..`で上がると、リンクの親ではなくリンク先の親に着きます。
        assert_eq!(resolve(&root.join("link/../c")).unwrap(), root.join("a/c"));
        assert_eq!(resolve(&root.join("a/./b/../b")).unwrap(), root.join("a/b"));
    }
}

//! 木を歩く: ripgrepと同じ`ignore`クレートで、`.gitignore`と隠しファイルを扱います。

use std::fs;
use std::path::{Path, PathBuf};

use bytesize::ByteSize;
use globset::{Glob, GlobSet, GlobSetBuilder};
use ignore::overrides::OverrideBuilder;
use ignore::{DirEntry, WalkBuilder, WalkState};
use tracing::{debug, warn};

use crate::stop;

// ANCHOR: walk
/// 木を歩いて見つけた1項目。ここではまだ中身を読まない
pub struct Item {
    /// ルートからの相対パス
    pub rel: PathBuf,
    pub kind: ItemKind,
}

pub enum ItemKind {
    File,
    /// 処理しないもの（シンボリックリンクなど）と、その理由
    Skip(String),
    /// 歩く途中のエラー（読めないディレクトリなど）
    Error(String),
}

/// どのファイルを処理するか
pub struct WalkOptions {
    pub include: Option<GlobSet>,
    pub exclude: GlobSet,
    /// 隠しファイルも歩く（`--hidden`）
    pub hidden: bool,
    /// `.gitignore`などに従わない（`--no-ignore`）
    pub no_ignore: bool,
    pub max_size: Option<ByteSize>,
}

impl WalkOptions {
    pub fn new(include: &[Glob], exclude: &[Glob]) -> Result<Self, globset::Error> {
        let set = |globs: &[Glob]| {
            let mut builder = GlobSetBuilder::new();
            for glob in globs {
                builder.add(glob.clone());
            }
            builder.build()
        };
        Ok(WalkOptions {
            include: (!include.is_empty()).then(|| set(include)).transpose()?,
            exclude: set(exclude)?,
            hidden: false,
            no_ignore: false,
            max_size: None,
        })
    }

    /// ripgrepと同じ既定: 隠しファイルと、`.gitignore`・`.ignore`・gitの除外設定に書かれたものは歩かない
    fn builder(&self, root: &Path, skip_temps: bool) -> WalkBuilder {
        let mut builder = WalkBuilder::new(root);
        let respect = !self.no_ignore;
        builder
            .hidden(!self.hidden)
            .ignore(respect)
            .git_ignore(respect)
            .git_global(respect)
            .git_exclude(respect)
            .parents(respect)
            // gitのリポジトリの外でも`.gitignore`に従います（ripgrepの`--no-require-git`）。
            .require_git(false)
            .follow_links(false)
            // `fileproc stats . > report.jsonl`で、書いている途中の報告を読まないように。
            .skip_stdout(true);
        let (root, exclude) = (root.to_path_buf(), self.exclude.clone());
        // 除外に当たるディレクトリには、入りもしません。処理中の一時ファイルも歩きません。
        builder.filter_entry(move |entry| {
            let rel = entry.path().strip_prefix(&root).unwrap_or(entry.path());
            entry.depth() == 0 || !(exclude.is_match(rel) || skip_temps && is_temp_name(entry))
        });
        builder
    }
}

/// `root`の下を`jobs`個のスレッドで歩き、見つけた項目ごとに、そのスレッドで`visit`を呼ぶ。
/// `jobs`が1なら、名前順に歩く
pub fn walk(root: &Path, options: &WalkOptions, jobs: usize, visit: impl Fn(Item) + Sync) {
    let mut builder = options.builder(root, true);
    let on_entry = |found: Result<DirEntry, ignore::Error>| {
        if stop::requested() {
            return WalkState::Quit; // Ctrl-Cなど: 新しいファイルには取りかからない
        }
        if let Some(item) = item(root, options, found) {
            visit(item);
        }
        WalkState::Continue
    };
    if jobs == 1 {
        builder.sort_by_file_name(|a, b| a.cmp(b));
        for found in builder.build() {
            if let WalkState::Quit = on_entry(found) {
                break;
            }
        }
    } else {
        // ripgrepと同じく、歩くスレッドがそのままファイルも処理します。
        let on_entry = &on_entry;
        builder
            .threads(jobs)
            .build_parallel()
            .run(|| Box::new(on_entry));
    }
}

/// 見つけたものを項目にする。ディレクトリと、選ばれなかったファイルは`None`
fn item(
    root: &Path,
    options: &WalkOptions,
    found: Result<DirEntry, ignore::Error>,
) -> Option<Item> {
    let relative = |path: &Path| path.strip_prefix(root).unwrap_or(path).to_path_buf();
    let entry = match found {
        Ok(entry) => entry,
        Err(error) => {
            let rel = error_path(&error).map_or_else(PathBuf::new, relative);
            let kind = ItemKind::Error(error.to_string());
            return Some(Item { rel, kind });
        }
    };
    let rel = relative(entry.path());
    let file_type = entry.file_type()?;
    let included = options
        .include
        .as_ref()
        .is_none_or(|set| set.is_match(&rel));
    if file_type.is_dir() || !included {
        return None;
    }
    let kind = if file_type.is_symlink() {
        ItemKind::Skip("シンボリックリンクはたどりません".into())
    } else if !file_type.is_file() {
        ItemKind::Skip("通常のファイルではありません".into())
    } else {
        match (options.max_size, entry.metadata()) {
            (Some(max), Ok(meta)) if meta.len() > max.as_u64() => {
                ItemKind::Skip(format!("{max}より大きいファイルです（--max-size）"))
            }
            (Some(_), Err(error)) => ItemKind::Error(error.to_string()),
            _ => ItemKind::File,
        }
    };
    Some(Item { rel, kind })
}

fn error_path(error: &ignore::Error) -> Option<&Path> {
    match error {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::Loop { child, .. } => Some(child),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        _ => None,
    }
}
// ANCHOR_END: walk

// ANCHOR: leftovers
/// 変換中に作る一時ファイルの名前: `.fileproc-`、英数字6文字（tempfileの既定）、`.tmp`
pub const TEMP_PREFIX: &str = ".fileproc-";
pub const TEMP_SUFFIX: &str = ".tmp";

fn is_temp_name(entry: &DirEntry) -> bool {
    let name = entry.file_name().as_encoded_bytes();
    let random = name
        .strip_prefix(TEMP_PREFIX.as_bytes())
        .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX.as_bytes()));
    entry.file_type().is_some_and(|t| t.is_file())
        && random.is_some_and(|r| r.len() == 6 && r.iter().all(u8::is_ascii_alphanumeric))
}

/// 中断された実行が`root`の下に残した一時ファイルを消し、消した数を返す。
/// 処理を始める前に呼ぶので、この実行の一時ファイルを消すことはない
pub fn remove_leftovers(root: &Path, options: &WalkOptions) -> Result<usize, ignore::Error> {
    // 一時ファイルの名前だけを「含める」指定（ripgrepの`-g`）にすると、ほかのファイルは返さず、
    // 一時ファイルは.gitignoreに`*.tmp`があっても、隠しファイルでも返ります。
    let only_temps = OverrideBuilder::new(root)
        .add(&format!("{TEMP_PREFIX}*{TEMP_SUFFIX}"))?
        .build()?;
    let mut removed = 0;
    let walker = options.builder(root, false).overrides(only_temps).build();
    for entry in walker.flatten() {
        if !is_temp_name(&entry) {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => {
                warn!(
                    "前回の実行が残した一時ファイルを消しました: {}",
                    entry.path().display()
                );
                removed += 1;
            }
            Err(error) => debug!("{}を消せません: {error}", entry.path().display()),
        }
    }
    Ok(removed)
}
// ANCHOR_END: leftovers

//! 止める合図: Ctrl-C（SIGINT）やSIGTERMを受けたとき、報告を書けなくなったとき。

use std::sync::atomic::{AtomicBool, Ordering};

// ANCHOR: stop
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// 新しいファイルに取りかからないように頼む。処理中のファイルは、書き終えるか一時ファイルを消して終わる
pub fn request() {
    REQUESTED.store(true, Ordering::Relaxed);
}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Ctrl-CとSIGTERMで止まるようにする。2回目を受けたら、待たずにすぐ終わる
/// （残った一時ファイルは、次の実行が消す）
pub fn install_handler() -> Result<(), ctrlc::Error> {
    ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
    })
}
// ANCHOR_END: stop

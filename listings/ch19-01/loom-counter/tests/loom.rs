//! `cargo test`の中で、このクレートを`--cfg loom`でビルドし直し、loomのモデル検査
//! （`tests/model.rs`）を実行します。出力は本文に載せている`model-output.txt`と比べます。
#![cfg(not(loom))]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use book_support::{Varies, assert_matches_recording, run_command};

/// 本文に載せているコマンド（読者が打ち込むもの）。
const COMMAND: &str = "$ RUSTFLAGS=\"--cfg loom\" cargo test -p loom-counter --test model -- --nocapture --test-threads=1";

#[test]
fn loom_finds_the_lost_update_and_accepts_both_fixes() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .ancestors()
        .nth(3)
        .expect("ワークスペースのルート");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["test", "-p", "loom-counter", "--test", "model", "--"])
        .args(["--nocapture", "--test-threads=1"])
        .current_dir(workspace)
        .env("RUSTFLAGS", "--cfg loom")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        // 外側の`cargo test`がロックしている`target/`とは別の場所にビルドします。
        .env("CARGO_TARGET_DIR", workspace.join("target").join("loom"));
    // 初回はloomとその依存クレートのビルドから始まるので、時間制限は長めにします。
    let done = run_command(cargo, Duration::from_secs(900));
    assert!(
        done.status.success(),
        "loomのモデル検査が失敗しました:\n{}\n{}",
        done.stdout,
        done.stderr
    );
    assert!(
        done.stdout.contains("test result: ok. 3 passed"),
        "{}",
        done.stdout
    );
    let shown = format!("{COMMAND}\n{}", done.stdout);
    assert_matches_recording(
        manifest_dir.join("model-output.txt"),
        &shown,
        Varies::nothing().durations(),
    );
}

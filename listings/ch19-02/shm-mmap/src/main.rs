//! 元のPythonの`Value`と`Array`の例を、プロセスで: 一時ファイルを複数のプロセスがメモリに対応付け（mmap）、
//! その中の`AtomicU64`を通して値と配列を共有します。
//!
//! 実行方法: `cargo run -p shm-mmap`
//! 前半は元のPythonと同じ処理（3つのプロセスが1回ずつ足す）、後半は同じ処理を何万回も繰り返し、
//! 不可分な足し算と、元のPythonと同じ「読んでから書く」足し算の結果を比べます。

use std::env;
use std::error::Error;
use std::fs::OpenOptions;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::process::Command;
use std::slice;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapMut, MmapOptions};

/// 共有メモリの中身: 0番目が値（カウンタ）、1〜4番目が配列（`f64`のビット列）です。
const COUNTER: usize = 0;
const ARRAY: Range<usize> = 1..5;
const SLOTS: usize = 5;
const BYTES: usize = SLOTS * size_of::<AtomicU64>();
const INITIAL_ARRAY: [f64; 4] = [1.0, 2.0, 3.0, 4.0];

// ANCHOR: mapping
/// 同じファイルを対応付けた、プロセス間の共有メモリです。中身は`AtomicU64`の並びとしてだけ扱います。
struct SharedMemory {
    map: MmapMut,
}

impl SharedMemory {
    /// `path`のファイル（親が`BYTES`バイトに伸ばしたもの）を、読み書きできるように対応付けます。
    fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        if file.metadata()?.len() < BYTES as u64 {
            return Err(io::Error::other("共有メモリのファイルが短すぎます"));
        }
        // SAFETY: 対応付けたメモリは、ほかのプロセスがRustの借用規則の外から書き換えます。
        // このプログラムは中身を`&[u8]`として読み書きすることはなく、`slots`が返すアトミック型を
        // 通してだけ触ります。ファイルはこのプログラムだけが使う一時ファイルで、
        // 対応付けている間に切り詰めるプロセスはありません。
        let map = unsafe { MmapOptions::new().len(BYTES).map_mut(&file)? };
        Ok(Self { map })
    }

    /// 共有メモリを`AtomicU64`のスライスとして見せます。
    fn slots(&mut self) -> &[AtomicU64] {
        let ptr = self.map.as_mut_ptr().cast::<AtomicU64>();
        assert!(ptr.is_aligned(), "対応付けの先頭が8バイト境界にありません");
        // SAFETY: `ptr`は長さ`BYTES`（= `SLOTS`個の`AtomicU64`）の対応付けの先頭で、
        // 境界が揃っていることは上で確かめました（mmapはページ境界から始まります）。
        // `AtomicU64`は`u64`と同じ大きさで、どんなビットの並びも正しい値です。
        // スライスは`self`を借用しているので、対応付けが解除された後には使えません。
        // ほかのプロセスも同じ場所をアトミック命令でしか触らないので、データ競合は起きません
        // （Rustのアトミック型はロックを使わないCPUの命令なので、プロセスをまたいでも不可分です）。
        unsafe { slice::from_raw_parts(ptr, SLOTS) }
    }
}
// ANCHOR_END: mapping

// ANCHOR: add
/// `slot`の`f64`に`x`を足します。読む・足す・書くを比較交換で1つの不可分な操作にします。
fn atomic_add_f64(slot: &AtomicU64, x: f64) {
    // 読んだ値が書く直前までに変わっていたら、読み直してやり直します。
    let _ = slot.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |bits| {
        Some((f64::from_bits(bits) + x).to_bits())
    });
}

/// 元のPythonの`shared_array[i] += index`と同じ足し算です。読むのも書くのもそれぞれは不可分ですが、
/// その間にほかのプロセスが書いた値は、この`store`で上書きされて消えます。
fn racy_add_f64(slot: &AtomicU64, x: f64) {
    let current = f64::from_bits(slot.load(Ordering::SeqCst));
    slot.store((current + x).to_bits(), Ordering::SeqCst);
}
// ANCHOR_END: add

// ANCHOR: worker
/// 子プロセス側: 値に1を足し、配列の全要素に`index`を足すことを`reps`回繰り返します。
fn worker(path: &Path, index: u32, reps: u32, racy: bool) -> io::Result<()> {
    let mut shared = SharedMemory::open(path)?;
    let slots = shared.slots();
    for _ in 0..reps {
        // 値はPythonでも`get_lock()`で守っていました。Rustでは`fetch_add`1つで済みます
        slots[COUNTER].fetch_add(1, Ordering::SeqCst);
        for slot in &slots[ARRAY] {
            if racy {
                racy_add_f64(slot, f64::from(index));
            } else {
                atomic_add_f64(slot, f64::from(index));
            }
        }
    }
    Ok(())
}
// ANCHOR_END: worker

// ANCHOR: parent
/// 親プロセス側: 共有メモリを作って初期値を入れ、3つの子プロセスに足し算をさせて、結果を読みます。
fn run(reps: u32, racy: bool) -> Result<(u64, Vec<f64>), Box<dyn Error>> {
    // 一時ファイルは`file`がドロップされると消えます
    let file = tempfile::NamedTempFile::new()?;
    file.as_file().set_len(BYTES as u64)?;
    let mut shared = SharedMemory::open(file.path())?;
    let slots = shared.slots();
    slots[COUNTER].store(0, Ordering::SeqCst);
    for (slot, x) in slots[ARRAY].iter().zip(INITIAL_ARRAY) {
        slot.store(x.to_bits(), Ordering::SeqCst);
    }

    let exe = env::current_exe()?;
    let how = if racy { "racy" } else { "atomic" };
    let mut children = Vec::new();
    for index in 1..=3 {
        let child = Command::new(&exe)
            .arg("worker")
            .arg(file.path())
            .args([index.to_string(), reps.to_string(), how.to_string()])
            .spawn()?;
        children.push(child);
    }
    // 1つが失敗しても、残りの子プロセスも待ってから報告します
    let statuses = children
        .into_iter()
        .map(|mut child| child.wait())
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(status) = statuses.iter().find(|s| !s.success()) {
        return Err(format!("子プロセスが失敗しました: {status}").into());
    }

    let value = slots[COUNTER].load(Ordering::SeqCst);
    let array = slots[ARRAY]
        .iter()
        .map(|s| f64::from_bits(s.load(Ordering::SeqCst)))
        .collect();
    Ok((value, array))
}
// ANCHOR_END: parent

// ANCHOR: main
fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.as_slice() {
        [] => {} // 親プロセス: このまま下へ進みます
        [mode, path, index, reps, how] if mode == "worker" => {
            let (index, reps) = (index.parse()?, reps.parse()?);
            worker(Path::new(path), index, reps, how == "racy")?;
            return Ok(());
        }
        _ => {
            return Err(format!(
                "使い方: shm-mmap [worker パス 番号 回数 atomic|racy]（{args:?}）"
            )
            .into());
        }
    }

    println!("=== 元のPythonと同じ: 3つのプロセスが1回ずつ足す ===");
    println!("初期値: 0");
    println!("初期配列: {INITIAL_ARRAY:?}");
    let (value, array) = run(1, false)?;
    println!("最終値: {value}");
    println!("最終配列: {array:?}");

    // デバッグビルドは遅いので、同じくらいの時間で終わるよう回数を減らします。
    let reps: u32 = if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    };
    println!("=== 3つのプロセスが{reps}回ずつ足す ===");
    let expected: Vec<f64> = INITIAL_ARRAY
        .iter()
        .map(|x| x + 6.0 * f64::from(reps))
        .collect();
    println!("期待する結果: 値 {}、配列 {expected:?}", 3 * reps);
    let (value, array) = run(reps, false)?;
    println!("不可分な足し算（fetch_update）: 値 {value}、配列 {array:?}");
    let (value, array) = run(reps, true)?;
    println!("読んでから書く足し算（load + store）: 値 {value}、配列 {array:?}");
    Ok(())
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    /// 子プロセスの代わりに、同じファイルを別々に対応付けたスレッドで`worker`を動かします。
    /// 対応付けが別々なので、コンパイラから見れば別のプロセスと同じく「外から書き換えられるメモリ」です。
    fn run_in_threads(reps: u32) -> (u64, Vec<f64>) {
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(BYTES as u64).unwrap();
        let mut shared = SharedMemory::open(file.path()).unwrap();
        let slots = shared.slots();
        for (slot, x) in slots[ARRAY].iter().zip(INITIAL_ARRAY) {
            slot.store(x.to_bits(), Ordering::SeqCst);
        }
        thread::scope(|s| {
            for index in 1..=3 {
                let path = file.path();
                s.spawn(move || worker(path, index, reps, false).unwrap());
            }
        });
        let value = slots[COUNTER].load(Ordering::SeqCst);
        let array = slots[ARRAY]
            .iter()
            .map(|s| f64::from_bits(s.load(Ordering::SeqCst)))
            .collect();
        (value, array)
    }

    #[test]
    fn atomic_adds_through_separate_mappings_are_exact() {
        assert_eq!(run_in_threads(1), (3, vec![7.0, 8.0, 9.0, 10.0]));
        assert_eq!(
            run_in_threads(10_000),
            (30_000, vec![60_001.0, 60_002.0, 60_003.0, 60_004.0])
        );
    }

    #[test]
    fn a_short_file_is_an_error_not_a_crash() {
        let file = tempfile::NamedTempFile::new().unwrap();
        assert!(SharedMemory::open(file.path()).is_err());
    }
}

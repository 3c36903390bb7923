//! `thread::Builder`で名前とスタックサイズを指定してスレッドを起動します。
//!
//! 実行方法: `cargo run -p thread-builder`
//! 3つの名前付きスレッドが自分の名前を表示して結果を返します。最後に、OSがスレッドを
//! 作れないとき`spawn`が`Err`を返すことを、わざと大きすぎるスタックを要求して確かめます。

use std::io;
use std::thread;
use std::time::Duration;

// ANCHOR: builder
fn download(page: u32) -> String {
    // `thread::current()`で、いま動いているスレッドの情報が取れます。
    let me = thread::current();
    let name = me.name().unwrap_or("名前なし");
    println!("{name}: ページ{page}を取得しています");
    thread::sleep(Duration::from_millis(50));
    format!("ページ{page}の内容")
}

fn download_all() -> io::Result<()> {
    let handles = (1..=3)
        .map(|page| {
            thread::Builder::new()
                .name(format!("downloader-{page}"))
                .stack_size(4 * 1024 * 1024) // 4 MiB
                .spawn(move || download(page))
        })
        // `spawn`は`io::Result<JoinHandle<_>>`を返します。1つでも失敗したら`?`で抜けます。
        .collect::<io::Result<Vec<_>>>()?;

    for handle in handles {
        let name = handle.thread().name().unwrap_or("名前なし").to_string();
        let page = handle.join().expect("スレッドがパニックしました");
        println!("メインスレッド: {name}から「{page}」を受け取りました");
    }
    Ok(())
}
// ANCHOR_END: builder

// ANCHOR: error
fn spawn_with_huge_stack() {
    // OSがスレッドを作れないと、`Builder::spawn`はパニックせずに`Err`を返します。
    // ここでは、どのOSでも用意できない大きさ（1 PiB）のスタックを要求して失敗させます。
    let result = thread::Builder::new()
        .name("too-big".into())
        .stack_size(1 << 50)
        .spawn(|| println!("ここには来ません"));
    match result {
        Ok(handle) => handle.join().expect("スレッドがパニックしました"),
        Err(e) => println!("スレッドを起動できませんでした: {e}"),
    }
}

fn main() -> io::Result<()> {
    download_all()?;
    spawn_with_huge_stack();
    Ok(())
}
// ANCHOR_END: error

#[cfg(test)]
mod tests {
    use super::*;
    use std::env;
    use std::process::Command;

    #[test]
    fn the_thread_sees_the_name_it_was_given() {
        let handle = thread::Builder::new()
            .name("downloader-9".into())
            .spawn(|| thread::current().name().map(String::from))
            .unwrap();
        assert_eq!(handle.thread().name(), Some("downloader-9"));
        assert_eq!(handle.join().unwrap().as_deref(), Some("downloader-9"));
        // `thread::spawn`で起動したスレッドには名前がありません。
        let unnamed = thread::spawn(|| thread::current().name().map(String::from));
        assert_eq!(unnamed.join().unwrap(), None);
    }

    /// Linuxでは、名前がOSのスレッド名（`top -H`やデバッガに出る名前）にもなります。
    /// OSの名前は15バイトまでなので、長い名前は切り詰められます。
    #[cfg(target_os = "linux")]
    #[test]
    fn the_name_is_also_the_os_thread_name_on_linux() {
        let comm = |name: &str| {
            thread::Builder::new()
                .name(name.into())
                .spawn(|| std::fs::read_to_string("/proc/thread-self/comm").unwrap())
                .unwrap()
                .join()
                .unwrap()
        };
        assert_eq!(comm("downloader-1").trim_end(), "downloader-1");
        assert_eq!(
            comm("a-very-long-thread-name").trim_end(),
            "a-very-long-thr"
        );
    }

    #[test]
    fn spawn_reports_failure_as_err_instead_of_panicking() {
        let result = thread::Builder::new().stack_size(1 << 50).spawn(|| ());
        assert!(result.is_err());
    }

    #[test]
    fn a_larger_stack_lets_a_thread_recurse_deeply() {
        // 1段あたり約4 KiBを使う再帰を2,000段（約8 MiB）。既定の2 MiBでは足りない深さです。
        fn depth(n: u32) -> u32 {
            // `black_box`を通すと中身が分からなくなるので、配列は再帰の間ずっとスタックに残ります。
            let frame = std::hint::black_box([0u8; 4096]);
            if n == 0 {
                0
            } else {
                1 + depth(n - 1) + u32::from(frame[0])
            }
        }
        let handle = thread::Builder::new()
            .stack_size(32 * 1024 * 1024)
            .spawn(|| depth(2_000))
            .unwrap();
        assert_eq!(handle.join().unwrap(), 2_000);
    }

    /// 本文の主張: パニックのメッセージにスレッドの名前が出ます。
    /// このテスト自身を子プロセスとして実行し、その標準エラー出力を調べます。
    #[test]
    fn a_panic_message_names_the_thread() {
        if env::var_os("THREAD_BUILDER_PANIC_CHILD").is_some() {
            let handle = thread::Builder::new()
                .name("downloader-7".into())
                .spawn(|| panic!("わざとパニックします"))
                .unwrap();
            assert!(handle.join().is_err());
            return;
        }
        let out = Command::new(env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::a_panic_message_names_the_thread",
                "--nocapture",
            ])
            .env("THREAD_BUILDER_PANIC_CHILD", "1")
            // バックトレースは調べないので作らせません（デバッグビルドでは作るのに0.1秒ほどかかります）
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        // 例: thread 'downloader-7' (12345) panicked at src/main.rs:…
        let line = stderr
            .lines()
            .find(|l| l.contains("panicked at"))
            .unwrap_or_default();
        assert!(line.starts_with("thread 'downloader-7'"), "{stderr}");
    }
}

//! 現在のスレッドの名前とID、並列に動けるスレッド数を調べ、
//! 起動したスレッドを自分で管理して「動いているスレッドの数」を数えます。
//!
//! 実行方法: `cargo run -p thread-info`

use std::io;
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;

// ANCHOR: current
fn describe(label: &str, main_id: ThreadId) {
    let me = thread::current();
    println!("{label}: 名前 = {}", me.name().unwrap_or("（名前なし）"));
    println!("{label}: ID = {:?}", me.id());
    // `ThreadId`は比べられるので、最初に覚えておいたIDと比べればメインスレッドかどうか分かります。
    println!("{label}: メインスレッドか = {}", me.id() == main_id);
}

fn show_current() -> io::Result<()> {
    let main_id = thread::current().id();
    describe("メイン", main_id);
    let cores = thread::available_parallelism()?;
    println!("並列に動けるスレッド数: {cores}");

    thread::Builder::new()
        .name("worker".into())
        .spawn(move || describe("名前付き", main_id))?
        .join()
        .expect("スレッドがパニックしました");
    thread::spawn(move || describe("名前なし", main_id))
        .join()
        .expect("スレッドがパニックしました");
    Ok(())
}
// ANCHOR_END: current

// ANCHOR: registry
/// まだ終わっていないスレッドの数。Pythonの`threading.active_count()`の代わりに、
/// 自分で持っている`JoinHandle`だけを数えます。
fn running(handles: &[JoinHandle<()>]) -> usize {
    handles.iter().filter(|h| !h.is_finished()).count()
}

fn track_workers() -> io::Result<()> {
    // 起動したスレッドの一覧（`threading.enumerate()`の代わり）は、ハンドルを入れた`Vec`です。
    let handles = (0..3u64)
        .map(|i| {
            thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || thread::sleep(Duration::from_millis(50 * (i + 1))))
        })
        .collect::<io::Result<Vec<_>>>()?;

    let names: Vec<_> = handles.iter().filter_map(|h| h.thread().name()).collect();
    println!("起動したスレッド: {names:?}");
    println!("動いているスレッド: {}", running(&handles));
    thread::sleep(Duration::from_millis(75));
    println!("75ミリ秒後に動いているスレッド: {}", running(&handles));

    for handle in handles {
        handle.join().expect("ワーカーがパニックしました");
    }
    println!("すべてjoinしました");
    Ok(())
}
// ANCHOR_END: registry

// ANCHOR: detached
fn main() -> io::Result<()> {
    show_current()?;
    track_workers()?;

    // ハンドルを捨てたスレッドは誰も待ちません。`main`から戻るとプロセスごと終わるので、
    // このスレッドの`println!`は実行されません。
    thread::spawn(|| {
        thread::sleep(Duration::from_secs(1));
        println!("この行は表示されません");
    });
    println!("メインスレッド: 終了します");
    Ok(())
}
// ANCHOR_END: detached

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    #[test]
    fn ids_are_unique_and_the_handle_knows_the_threads_id() {
        let main_id = thread::current().id();
        let handle = thread::spawn(|| thread::current().id());
        let handle_id = handle.thread().id();
        let inside_id = handle.join().unwrap();
        assert_eq!(handle_id, inside_id);
        assert_ne!(inside_id, main_id);
        // 終わったスレッドのIDが、次のスレッドに再利用されることはありません。
        let next_id = thread::spawn(|| thread::current().id()).join().unwrap();
        assert_ne!(next_id, inside_id);
        assert_ne!(next_id, main_id);
    }

    #[test]
    fn available_parallelism_is_at_least_one() {
        assert!(thread::available_parallelism().unwrap().get() >= 1);
    }

    #[test]
    fn running_counts_exactly_the_unfinished_handles() {
        // 各ワーカーは自分の受信側が閉じるまで待つので、終わるタイミングをテストが決められます。
        let (senders, handles): (Vec<_>, Vec<_>) = (0..3)
            .map(|_| {
                let (tx, rx) = mpsc::channel::<()>();
                let handle = thread::spawn(move || {
                    let _ = rx.recv();
                });
                (tx, handle)
            })
            .unzip();
        assert_eq!(running(&handles), 3);

        let mut senders = senders.into_iter();
        drop(senders.next()); // worker 0 を終わらせる
        let deadline = Instant::now() + Duration::from_secs(5);
        while !handles[0].is_finished() {
            assert!(Instant::now() < deadline, "worker 0 が終わりません");
            thread::sleep(Duration::from_millis(1));
        }
        // 残りの2つはまだ受信待ちなので、必ず2になります。
        assert_eq!(running(&handles), 2);

        drop(senders); // 残りも終わらせる
        for handle in handles {
            handle.join().unwrap();
        }
    }

    #[test]
    fn dropping_the_handle_detaches_the_thread_it_keeps_running() {
        // 本文の主張: `JoinHandle`をドロップしてもスレッドは止まらず、動き続けます。
        let (to_thread, from_main) = std::sync::mpsc::channel::<u32>();
        let (to_main, from_thread) = std::sync::mpsc::channel::<u32>();
        let handle = thread::spawn(move || {
            for n in from_main {
                to_main.send(n * 2).unwrap();
            }
        });
        drop(handle);
        // ハンドルを捨てた後でも、スレッドは受け取って返事をします。
        to_thread.send(21).unwrap();
        assert_eq!(from_thread.recv_timeout(Duration::from_secs(5)), Ok(42));
        drop(to_thread); // 送信側を閉じると、スレッドのループが終わります。
    }
}

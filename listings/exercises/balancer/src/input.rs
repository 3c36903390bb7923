//! 入力（JSON Lines）を読むスレッドと、idの重複の検査。

use std::collections::{HashSet, VecDeque};
use std::io::BufRead;
use std::thread;

use tokio::sync::mpsc;

use crate::protocol::{Task, read_line_blocking};

// ANCHOR: input
/// idの重複を調べるために覚えておく、直近のidの数。これより前のidは忘れるので、
/// 流れ続ける入力でもメモリは一定（約30MiB）で頭打ちになります。
pub const ID_WINDOW: usize = 1 << 20;

/// 直近`capacity`件のidの集合。古いものから忘れます。
pub struct IdWindow {
    seen: HashSet<u64>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl IdWindow {
    pub fn new(capacity: usize) -> IdWindow {
        IdWindow {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// 新しいidなら覚えて`true`、直近に同じidがあれば`false`を返します。
    pub fn insert(&mut self, id: u64) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        // 先に古いものを忘れてから覚えるので、順序の列は`capacity`件を超えて伸びません
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.order.push_back(id);
        true
    }
}

/// 入力を読むスレッドを起動します。チャネルが満杯なら`blocking_send`で待つので、
/// ワーカーが忙しいあいだは入力も読み進めません（背圧）。誤った行は理由を付けて送ります。
pub fn spawn_reader(mut source: Box<dyn BufRead + Send>, tx: mpsc::Sender<Result<Task, String>>) {
    thread::spawn(move || {
        let mut ids = IdWindow::new(ID_WINDOW);
        for number in 1.. {
            let item = match read_line_blocking(&mut source) {
                Ok(None) => break,
                Ok(Some(line)) if line.trim().is_empty() => continue,
                Ok(Some(line)) => match Task::parse(&line) {
                    Ok(task) if !ids.insert(task.id) => {
                        Err(format!("{number}行目: id {}が重複しています", task.id))
                    }
                    Ok(task) => Ok(task),
                    Err(e) => Err(format!("{number}行目: {e}")),
                },
                Err(e) => {
                    // 読めない入力の続きは信用できないので、ここで読むのをやめます
                    let _ = tx.blocking_send(Err(format!("{number}行目: {e}")));
                    break;
                }
            };
            if tx.blocking_send(item).is_err() {
                break; // ディスパッチャが入力を閉じました（中断）
            }
        }
    });
}
// ANCHOR_END: input

// ANCHOR: demo
/// `--demo`で流すタスク。CPUとスリープの処理に、わざと失敗するタスクを3つ混ぜてあります。
pub const DEMO: &str = r#"{"id":1,"cpu":1000000}
{"id":2,"sleep_ms":50}
{"id":3,"cpu":2000000}
{"id":4,"sleep_ms":120}
{"id":5,"fault":"crash"}
{"id":6,"cpu":500000}
{"id":7,"sleep_ms":30}
{"id":8,"cpu":5000000}
{"id":9,"fault":"garbage"}
{"id":10,"sleep_ms":80}
"#;
// ANCHOR_END: demo

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_window_forgets_the_oldest_id() {
        let mut ids = IdWindow::new(3);
        assert!(ids.insert(1));
        assert!(!ids.insert(1));
        assert!(ids.insert(2) && ids.insert(3));
        assert!(!ids.insert(1), "1 is still among the last 3");
        assert!(ids.insert(4)); // 1を忘れます
        assert!(ids.insert(1), "1 was forgotten");
        assert_eq!(ids.seen.len(), 3);
        assert_eq!(ids.order.len(), 3);
    }

    #[test]
    fn the_window_is_larger_than_what_the_dispatcher_can_hold() {
        // 同時に抱えうるタスク（ワーカー64×1,000件＋チャネルの16件）より大きいので、
        // まだ報告していないタスクと同じidが、忘れられて通ってしまうことはありません
        const { assert!(ID_WINDOW > 64 * 1000 + 16) };
    }
}

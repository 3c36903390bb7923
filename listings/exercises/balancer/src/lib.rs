//! 練習問題5の解答例: タスク（JSON Lines）を複数のワーカープロセスに分散して実行するディスパッチャ。
//!
//! - [`protocol`] — ディスパッチャとワーカーのあいだの約束（1行1つのJSON）
//! - [`worker`] — 組み込みのワーカーと、ワーカーのプロセスの起動
//! - [`strategy`] — 次のタスクをどのワーカーに渡すか
//! - [`dispatcher`] — タスクを渡し、返事と障害を受け取り、結果をちょうど1回ずつ報告するループ
//! - [`input`] — 入力を読むスレッドと、idの重複の検査
//! - [`cli`] — コマンドライン引数、進捗表示とログ

pub mod cli;
pub mod dispatcher;
pub mod input;
pub mod protocol;
pub mod strategy;
pub mod worker;

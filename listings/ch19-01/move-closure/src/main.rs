//! スレッドにローカル変数を渡す2つの方法: `move`で所有権ごと渡すか、
//! `thread::scope`でスコープの中だけ借用させるか。
//!
//! 実行方法: `cargo run -p move-closure`

use std::thread;

// ANCHOR: move
fn with_move() {
    let names = vec![String::from("A"), String::from("B")];

    // `move`でベクタの所有権をスレッドに移します。
    let handle = thread::spawn(move || {
        for name in &names {
            println!("move: こんにちは、{name}さん");
        }
        names.len() // 所有権ごと持っているので、値を返すこともできます
    });

    // println!("{names:?}"); // ← ここではもう使えません（ムーブ済み）
    let count = handle.join().unwrap();
    println!("move: {count}人にあいさつしました");
}
// ANCHOR_END: move

// ANCHOR: scope
fn with_scope() {
    let names = vec![String::from("A"), String::from("B")];

    // スコープの中で起動したスレッドは、スコープを抜ける前に必ず合流します。
    // だから`names`を借用するだけで済みます。
    thread::scope(|s| {
        for name in &names {
            s.spawn(move || println!("scope: こんにちは、{name}さん"));
        }
    });

    println!("scope: まだ使えます: {names:?}");
}
// ANCHOR_END: scope

fn main() {
    with_move();
    with_scope();
}

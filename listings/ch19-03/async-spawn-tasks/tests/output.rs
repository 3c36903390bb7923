use book_support::Varies;

// 経過時間と、マルチスレッドのランタイムでタスクが動き始める順序（開始の行）は実行ごとに変わります。
// 完了の行は待ち時間の短い順です。
book_support::output_test!(
    Varies::nothing()
        .durations()
        .any_order(r"^(タスク|セット)\d: 開始")
);

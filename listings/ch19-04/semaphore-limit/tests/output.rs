use book_support::Varies;

// タスクは同時に動くので、開始と完了の行の順序と、経過時間は実行ごとに変わります。
book_support::output_test!(Varies::nothing().durations().any_order(r"^タスク\d+: "));

use book_support::Varies;

// 2つのスレッドの行の順序と、経過時間は実行ごとに変わります。
book_support::output_test!(Varies::nothing().durations().any_order(r"^スレッド[AB]: "));

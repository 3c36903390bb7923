use book_support::Varies;

// 経過時間は実行ごとに変わります。
book_support::output_test!(Varies::nothing().durations());

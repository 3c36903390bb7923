use book_support::Varies;

// 待った時間は実行ごとに変わります。
book_support::output_test!(Varies::nothing().durations());

use book_support::Varies;

// 測った時間と速度比は実行ごとに変わります。
book_support::output_test!(Varies::nothing().durations().ratios());

use book_support::Varies;

// 待ち時間（ジッター入り）と経過時間は実行ごとに変わります。
book_support::output_test!(Varies::nothing().durations());

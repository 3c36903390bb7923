use book_support::Varies;

// PIDは実行ごとに変わります。
book_support::output_test!(Varies::nothing().pids());

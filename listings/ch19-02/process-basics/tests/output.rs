use book_support::Varies;

// PIDは実行ごとに変わり、3つの子プロセスは同時に動くので、その行の順序も変わります。
book_support::output_test!(Varies::nothing().pids().any_order(r"^プロセスWorker-\d"));

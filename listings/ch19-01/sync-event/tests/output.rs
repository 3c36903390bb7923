use book_support::Varies;

// 待っているスレッドが出力する行の順序は実行ごとに変わります。
book_support::output_test!(Varies::nothing().any_order(r"^(Waiter|Receiver)-\d: "));

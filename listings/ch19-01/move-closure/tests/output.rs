use book_support::Varies;

// scopeの中の2つのスレッドは同時に動くので、あいさつの順序は実行ごとに変わります。
book_support::output_test!(Varies::nothing().any_order(r"^scope: こんにちは"));

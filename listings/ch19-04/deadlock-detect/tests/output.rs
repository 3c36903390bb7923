use book_support::Varies;

// 2つのスレッドは同時に動くので、その行の順序は実行ごとに変わります。
book_support::output_test!(Varies::nothing().any_order(r"^スレッド[12]: "));

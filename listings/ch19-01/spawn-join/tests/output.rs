use book_support::Varies;

// 経過時間と、2つのスレッドが出力する行の順序は実行ごとに変わります。
book_support::output_test!(Varies::nothing().durations().any_order(r"^スレッド[AB]: "));

use book_support::Varies;

// 3つのスレッドは同時に動くので、取得中の行の順序は実行ごとに変わります。
book_support::output_test!(Varies::nothing().any_order(r"^downloader-\d: "));

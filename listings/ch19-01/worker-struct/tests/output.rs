use book_support::Varies;

// 3つのワーカーは同時に動くので、その行の順序は実行ごとに変わります（結果の行はjoinの順）。
book_support::output_test!(Varies::nothing().any_order(r"^Worker-\d: "));

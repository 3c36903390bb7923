use book_support::Varies;

// 経過時間と、どのタスクが先にロックを獲得するか（要求と応答の組の順序）は実行ごとに変わります。
book_support::output_test!(Varies::nothing().durations().any_order(r"^  要求"));

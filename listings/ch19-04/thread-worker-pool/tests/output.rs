use book_support::Varies;

// ワーカーは同時に動くので、終わった順の行の順序と、経過時間は実行ごとに変わります。
book_support::output_test!(
    Varies::nothing()
        .durations()
        .any_order(r"^  ジョブ\d+(: \S+\.(example|invalid)|でエラー)")
);

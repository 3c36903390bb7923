use book_support::Varies;

// 2つのプロデューサーと3つのコンシューマーは同時に動くので、行の順序、どのコンシューマーがどのアイテムを受け取るか、それぞれの個数は実行ごとに変わります。最後の合計は変わりません。
book_support::output_test!(
    Varies::nothing()
        .redact("[CONSUMER]", r"消費\((?<redacted>C\d)\)")
        .redact("[COUNT]", r"完了（(?<redacted>\d+)個）")
        .any_order(r"^(生産|消費|プロデューサー|コンシューマー)")
);

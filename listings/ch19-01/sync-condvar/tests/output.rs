use book_support::Varies;

// どのコンシューマーがいくつ受け取るか、行の順序は実行ごとに変わります。
book_support::output_test!(
    Varies::nothing()
        .redact("[CONSUMER]", r"Consumer-(?<redacted>\d)")
        .redact("[COUNT]", r"終了（(?<redacted>\d+)個）")
        .any_order(r"^(Producer|Consumer)-?")
);

use book_support::Varies;

// どのコンシューマーがアイテムを受け取るか、それぞれが何個受け取るかは実行ごとに変わります。終了の行は同時に出ます。
book_support::output_test!(
    Varies::nothing()
        .redact("[CONSUMER]", r"Consumer-(?<redacted>\d): item")
        .redact("[COUNT]", r"終了（(?<redacted>\d+)個）")
        .any_order(r"^Consumer-\d: キューが閉じた")
);

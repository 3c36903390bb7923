use book_support::Varies;

// スレッドの行の順序と、どのスレッドがリーダーになるかは実行ごとに変わります。
book_support::output_test!(
    Varies::nothing()
        .redact("[WORKER]", r"Worker-(?<redacted>\d)")
        .any_order(r"^Worker-")
);

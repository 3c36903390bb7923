use book_support::Varies;

// 失われる更新の数は実行ごとに変わります。
book_support::output_test!(
    Varies::nothing()
        .redact("[VALUE]", r"実際の値(?<redacted>\d+)")
        .redact("[LOST]", r"失われた更新(?<redacted>\d+)回")
);

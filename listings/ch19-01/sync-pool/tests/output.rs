use book_support::Varies;

// どのワーカーがどのリソースをいつ借りるか（と、そのときの使用中の数）は実行ごとに変わります。
book_support::output_test!(
    Varies::nothing()
        .redact("[WORKER]", r"Worker-(?<redacted>\d)")
        .redact("[RESOURCE]", r"リソース(?<redacted>\d)を")
        .redact("[IN_USE]", r"使用中(?<redacted>\d)個")
        .any_order(r"^Worker-")
);

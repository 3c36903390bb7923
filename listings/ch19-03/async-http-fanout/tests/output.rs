use book_support::Varies;

// 経過時間と速度比、それにローカルのサーバーのポート番号は実行ごとに変わります。
book_support::output_test!(
    Varies::nothing()
        .durations()
        .ratios()
        .redact("[PORT]", r"127\.0\.0\.1:(?<redacted>\d+)")
);

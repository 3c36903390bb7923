use book_support::Varies;

// 測った時間と速度比、それにこのマシンで並列に動けるスレッド数は実行ごとに変わります。
book_support::output_test!(
    Varies::nothing()
        .durations()
        .ratios()
        .redact("[CORES]", r"並列に動けるスレッド数: (?<redacted>\d+)")
);

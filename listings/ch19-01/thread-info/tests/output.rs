use book_support::Varies;

// 並列に動けるスレッド数はマシンごとに違います。
book_support::output_test!(
    Varies::nothing().redact("[CORES]", r"並列に動けるスレッド数: (?<redacted>\d+)")
);

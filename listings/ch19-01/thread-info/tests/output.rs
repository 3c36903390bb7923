use book_support::Varies;

// ThreadIdの数と並列に動けるスレッド数は環境で、75ミリ秒後に動いている数はタイミングで変わります。
book_support::output_test!(
    Varies::nothing()
        .redact("[ID]", r"ThreadId\((?<redacted>\d+)\)")
        .redact("[CORES]", r"並列に動けるスレッド数: (?<redacted>\d+)")
        .redact(
            "[RUNNING]",
            r"75ミリ秒後に動いているスレッド: (?<redacted>\d+)"
        )
);

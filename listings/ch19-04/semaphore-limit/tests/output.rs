use book_support::Varies;

// タスクは同時に動くので、開始と完了の行の順序と、開始の時点で実行中の数、経過時間は実行ごとに変わります。
book_support::output_test!(
    Varies::nothing()
        .durations()
        .redact("[RUNNING]", r"実行中(?<redacted>\d+)個")
        .any_order(r"^タスク\d+: ")
);

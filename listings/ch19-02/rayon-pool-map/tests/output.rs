use book_support::Varies;

// どのスレッドがどの数をどの順に計算するかと、経過時間は実行ごとに変わります。
book_support::output_test!(
    Varies::nothing()
        .durations()
        .redact("[THREAD]", r"スレッド(?<redacted>\d+): ")
        .any_order(r"^スレッド\d+: ")
);

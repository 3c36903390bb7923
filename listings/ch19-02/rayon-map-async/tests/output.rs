use book_support::Varies;

// どのスレッドがどの数をどの順に計算するか、待つ間にほかの処理が何回できたか、経過時間は実行ごとに変わります。
book_support::output_test!(
    Varies::nothing()
        .durations()
        .redact("[THREAD]", r"スレッド(?<redacted>\d+): ")
        .any_order(r"^スレッド\d+: ")
        .redact("[COUNT]", r"を(?<redacted>\d+)個片付け")
);

use book_support::Varies;

// 本番開始の行は同時に出ます。準備完了は30ミリ秒おきですが、忙しいマシンでは前後します。リーダーに選ばれるスレッドは決まっていません（`BarrierWaitResult::is_leader`）。
book_support::output_test!(
    Varies::nothing()
        .any_order(r"^Worker-\d: (準備完了|本番開始)")
        .redact("[LEADER]", r"Worker-(?<redacted>\d): リーダー")
);

use book_support::Varies;

// ロックなしの「読んでから書く」足し算で失われる更新の数は実行ごとに変わります（失われることは、このクレートのテストが確かめます）。
book_support::output_test!(
    Varies::nothing().redact("[LOST_UPDATES]", r"（load \+ store）: (?<redacted>[^\n]*)")
);

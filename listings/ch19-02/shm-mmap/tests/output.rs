use book_support::Varies;

// ロックなしの「読んでから書く」足し算で失われる更新の数は実行ごとに変わります
// （期待より大きくならないことは、tests/processes.rsが確かめます。失われるかどうかはタイミングしだいです）。
book_support::output_test!(
    Varies::nothing().redact("[LOST_UPDATES]", r"（load \+ store）: (?<redacted>[^\n]*)")
);

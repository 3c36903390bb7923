use book_support::Varies;

// プロデューサーとコンシューマーのスレッドは同時に動くので、送信と受信の行がどう交互に並ぶかは
// 保証されません（アイテムが送った順に届くことは、このクレートのテストが確かめます）。
book_support::output_test!(Varies::nothing().any_order(r"^(Producer 送信|Consumer 受信): "));

use book_support::Varies;

// 親（Producer）と子（Consumer）は別のプロセスとして同時に動くので、
// 送信と受信の行がどちらが先に出るかは実行ごとに変わります。
book_support::output_test!(Varies::nothing().any_order(r"^(Producer 送信|Consumer 受信): "));

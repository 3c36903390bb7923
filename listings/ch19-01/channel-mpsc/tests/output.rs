use book_support::Varies;

// 送信と受信の行、3つのプロデューサーのアイテムが届く順序は実行ごとに変わります。
book_support::output_test!(
    Varies::nothing().any_order(r"^(プロデューサー: |メインスレッド: アイテム|受信: P)")
);

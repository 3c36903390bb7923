use book_support::Varies;

// `#[tokio::main]`のランタイムはマルチスレッドなので、spawnしたgreet("B")の本体は
// 別のワーカースレッドで動き、mainの「spawnしました」の行より先に出ることがあります。
book_support::output_test!(
    Varies::nothing().any_order(r#"^(main: greet\("B"\)をspawnしました|greet\(B\): )"#)
);

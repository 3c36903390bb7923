//! 本文に載せている「コンパイルできないコード」が、今もその理由でコンパイルできないことを確かめます。
//! `.stderr`は本物のrustcの出力で、`cargo xtask bless`（`TRYBUILD=overwrite`）が記録します。

#[test]
fn rejected_by_the_compiler() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}

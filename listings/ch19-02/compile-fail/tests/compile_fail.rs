//! 本文に載せている「コンパイルできないコード」が、今もその理由でコンパイルできないことを確かめます。
//! `.stderr`は本物のrustcの出力で、`cargo xtask bless`（`TRYBUILD=overwrite`）が記録します。

#[test]
fn rejected_by_the_compiler() {
    // `.stderr`は記録したときのrustcの文言そのものなので、同じリリースのrustcでだけ比べます
    // （ほかのリリースでは理由を表示して飛ばし、`CI=true`では失敗します）。
    if book_support::on_recorded_toolchain("the compile errors shown in the book") {
        trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
    }
}

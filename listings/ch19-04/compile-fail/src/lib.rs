//! 19.4の「コンパイルできないコード」を集めたクレートです。コードは`tests/ui/`にあり、
//! `tests/compile_fail.rs`が本物の`rustc`のエラー（`.stderr`）と照らし合わせます。

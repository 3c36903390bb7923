//! 統合テストの入り口です。`tests/`のファイルはどれもこのクレートのモジュールで、
//! 1つのテストバイナリになります（ファイルごとに別のバイナリをリンクせず、別のファイルのテストも並んで動きます）。

mod common;
mod cli;
mod in_place;
mod options;
mod overlap;
mod session;
mod streaming;
mod walk;

//! 結合テストの入り口です。`tests/`のほかのファイルはどれもこのファイルのモジュールで、
//! 全体で1つのテストバイナリになります（ファイルごとにバイナリをリンクせずに済み、ファイルの違うテストも同時に実行されます）。

mod cli;
mod common;
mod in_place;
mod options;
mod overlap;
mod session;
mod streaming;
mod walk;

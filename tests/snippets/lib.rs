//! The book's code blocks as doctests.
//!
//! `build.rs` expands every chapter with mdBook (so `{{#rustdoc_include}}` brings in the
//! whole listing, hidden lines included) and generates one empty module per chapter
//! whose doc comment is that chapter. `cargo test` then compiles and runs every
//! ```` ```rust ```` block exactly as rustdoc does for `mdbook test`: `ignore` blocks are
//! skipped, `no_run` blocks are compiled only. A listing whose program is run by its own
//! drift test (`output.txt`) or session recording is made `no_run` here by build.rs: it is
//! built and run once, by that test, and the doctest still proves that the code shown compiles
//! with the book's dependency set. The doctest names say which page and line
//! a failing block is on, e.g. `tests/snippets/lib.rs - page_ch19_01_threads (line 42)`.
#![allow(rustdoc::all)]
// The listings' own `#[cfg(test)] mod tests` come along as hidden lines of a whole program;
// they are run by the listing crates' tests, not here.
#![allow(clippy::test_attr_in_doctest)]

include!(concat!(env!("OUT_DIR"), "/chapters/chapters.rs"));

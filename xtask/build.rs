//! Empty: the `[build-dependencies]` in Cargo.toml exist only so that `cargo xtask` builds
//! the build scripts and proc-macros of its dependencies as `cargo test` does (see there).

fn main() {}

//! The publishing workflow (`.github/workflows/pages.yml`) cannot run here, so this checks
//! what it would do: build with the README's build command, on the recorded toolchain, after
//! `cargo test`, and deploy the directory the book is built into.

use std::fs;

fn read(path: &str) -> String {
    fs::read_to_string(xtask::workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The commands of the workflow's `run:` steps, in order (one-line commands).
fn run_steps(workflow: &str) -> Vec<String> {
    workflow
        .lines()
        .filter_map(|line| line.trim().strip_prefix("run: "))
        .filter(|cmd| !cmd.starts_with('|'))
        .map(|cmd| cmd.trim().to_owned())
        .collect()
}

#[test]
fn the_workflow_builds_with_the_readmes_command_after_the_tests() {
    let workflow = read(".github/workflows/pages.yml");
    let readme = read("README.md");
    let steps = run_steps(&workflow);

    // The README's build command, from its list of commands: "- `cargo xtask build` — …".
    let build = readme
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("- `")?;
            let (command, description) = rest.split_once('`')?;
            (command.contains("build") && description.contains("book/")).then_some(command)
        })
        .expect("the README names the command that builds the book into book/");
    let build_at = steps.iter().position(|s| s == build);
    assert!(
        build_at.is_some(),
        "the workflow's build step is not the README's `{build}`: {steps:?}"
    );
    let test_at = steps.iter().position(|s| s.starts_with("cargo test"));
    assert!(
        test_at.is_some_and(|t| Some(t) < build_at),
        "the workflow runs `cargo test` before it builds: {steps:?}"
    );
    assert!(
        readme.contains("$ cargo test "),
        "the README's test command"
    );

    // It deploys what `cargo xtask build` writes (book.toml's build-dir).
    let book_toml = read("book.toml");
    let build_dir = book_toml
        .lines()
        .find_map(|l| l.strip_prefix("build-dir = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("book.toml sets build-dir");
    assert!(workflow.contains("actions/upload-pages-artifact@"));
    assert!(workflow.contains(&format!("path: {build_dir}\n")));
    assert!(workflow.contains("actions/deploy-pages@"));

    // On the compiler the book's outputs were recorded with, with caches.
    assert!(workflow.contains("rust-toolchain-recorded"));
    let recorded = read("rust-toolchain-recorded");
    assert!(
        recorded.lines().any(|l| l.starts_with("rustc 1.")),
        "rust-toolchain-recorded has a `rustc 1.x.y` line, which the workflow reads"
    );
    assert!(workflow.contains("actions/cache@") && workflow.contains("target/"));
    assert!(workflow.contains("~/.cargo/registry/"));
    // 404.html finds its assets under the site's path.
    assert!(workflow.contains("MDBOOK_OUTPUT__HTML__SITE_URL"));
    assert!(book_toml.contains("site-url = \"/"));
}

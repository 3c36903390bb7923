//! The drift test: every listing that has an `output.txt` is run as the file's first line
//! says (`$ cargo run [--release] -p NAME [-- ARGS]`) and what it prints is compared with the
//! recording, exactly except for what the listing declares to vary in its `Cargo.toml`:
//!
//! ```toml
//! # the elapsed time, and the lines of the two threads (they run concurrently)
//! [package.metadata.output]
//! durations = true                  # `352.0ms`, `1.2s` → [ELAPSED]
//! ratios = true                     # `1.97倍` → [RATIO]倍
//! pids = true                       # `PID: 4242` → [PID]
//! redact = [{ as = "[CORES]", pattern = '並列に動けるスレッド数: (?<redacted>\d+)' }]
//! any-order = ['^スレッド[AB]: ']    # lines printed by concurrent workers
//! cpu-bound = true                  # measures computation: runs at a low CPU priority
//! ```
//!
//! One test per listing, named after its package: `cargo test --test output -- spawn-join`
//! checks one (one filter, as libtest-mimic takes). The programs mostly wait (they show
//! concurrency with sleeps and use almost no CPU), so this binary has its own `main`
//! (libtest-mimic) and runs them all at once by default. A listing that measures the speed of
//! computation (`cpu-bound = true`) keeps every core busy, which would stretch the others'
//! sleeps and timeouts: it runs at a lower CPU priority (10 nice levels down), so it gets the
//! CPU the others leave (what it measures is redacted, and its result is compared; `cargo xtask
//! bless` records each listing alone). `--test-threads N` (or `RUST_TEST_THREADS`) sets how
//! many run at once: the tokio and rayon listings start a thread per core, so on a machine with
//! many cores (or a container with a low limit on processes) fewer at once may be wiser.
//!
//! The programs are built by two nested `cargo build`s: one with `--release` for the
//! `--release` recordings (first: the benchmarks start as soon as it is done), and one for the
//! others, which runs beside the benchmarks (each listing waits for the build it needs). The
//! debug build selects the same packages and, through `--test output`, the same
//! dev-dependencies as `cargo test` at the root, so the dependencies are resolved with the same
//! features and nothing but the listings' own binaries is built.

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, OnceLock};

use book_support::{OutputTxt, Varies};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let listings = match listings(root) {
        Ok(listings) => listings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let builds: Arc<Builds> = Arc::default();
    let mut trials: Vec<(Arc<Listing>, Trial)> = listings
        .into_iter()
        .map(|listing| {
            let listing = Arc::new(listing);
            let (this, builds) = (Arc::clone(&listing), Arc::clone(&builds));
            let trial = Trial::test(listing.package.clone(), move || {
                check(&this, builds.of(this.release()).wait())
            });
            let trial = trial.with_kind(if listing.cpu_bound { "cpu-bound" } else { "" });
            (listing, trial)
        })
        .collect();
    let chosen: Vec<&Listing> = trials
        .iter()
        .filter(|(_, trial)| !args.is_filtered_out(trial) && !args.is_ignored(trial))
        .map(|(listing, _)| listing.as_ref())
        .collect();
    if args.test_threads.is_none() {
        args.test_threads = match std::env::var("RUST_TEST_THREADS") {
            // All at once: the sleeping listings then take as long as the slowest of them.
            Err(_) => Some(chosen.len().max(1)),
            Ok(n) => n.parse().ok(),
        };
    }
    if args.test_threads.is_none_or(|n| n == 0) {
        eprintln!("error: the number of test threads must be a whole number above 0");
        return ExitCode::FAILURE;
    }
    // Build what the filters leave to run (nothing for `--list`): the release build first,
    // so that its listings (the benchmarks) start while the debug build is checked.
    let packages = |release: bool| -> Vec<String> {
        chosen
            .iter()
            .filter(|l| l.release() == release)
            .map(|l| l.package.clone())
            .collect()
    };
    let debug_build = (!args.list).then(|| {
        let _ = builds.release.set(Build::new(root, true, &packages(true)));
        let (builds, packages) = (Arc::clone(&builds), packages(false));
        std::thread::spawn(move || {
            let build = std::panic::catch_unwind(|| Build::new(root, false, &packages))
                .unwrap_or_else(|_| Build::failed("the debug build panicked".into()));
            let _ = builds.debug.set(build);
        })
    });
    // Started first: they take longest.
    trials.sort_by_key(|(listing, _)| !listing.cpu_bound);
    let trials = trials.into_iter().map(|(_, trial)| trial).collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(debug_build) = debug_build {
        let _ = debug_build.join();
    }
    conclusion.exit_code()
}

/// A listing with an `output.txt` (or one that declares what varies without having one).
struct Listing {
    package: String,
    dir: PathBuf,
    /// Its `output.txt`, read once (or why it cannot be read).
    recorded: Result<OutputTxt, String>,
    /// Whether it declares `cpu-bound = true`.
    cpu_bound: bool,
    /// `[package.metadata.output]` of its `Cargo.toml`.
    declared: Option<toml::Value>,
}

impl Listing {
    /// Whether `output.txt` records a release build.
    fn release(&self) -> bool {
        self.recorded.as_ref().is_ok_and(|o| o.command.release)
    }
}

/// Every listing under `listings/*/*` that has an `output.txt` or declares what varies.
fn listings(root: &Path) -> Result<Vec<Listing>, String> {
    let mut found = Vec::new();
    for dir in xtask::listing_dirs(root).map_err(|e| format!("listings/: {e}"))? {
        let path = dir.join("Cargo.toml");
        let manifest: toml::Table = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| text.parse().map_err(|e: toml::de::Error| e.to_string()))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let package = manifest
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(toml::Value::as_str)
            .ok_or_else(|| format!("{}: no [package] name", path.display()))?;
        let declared = manifest
            .get("package")
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get("output"))
            .cloned();
        if !dir.join("output.txt").is_file() && declared.is_none() {
            continue;
        }
        let cpu_bound = declared.as_ref().and_then(|d| d.get("cpu-bound"));
        found.push(Listing {
            package: package.to_owned(),
            recorded: OutputTxt::read(&dir),
            cpu_bound: cpu_bound.and_then(toml::Value::as_bool).unwrap_or(false),
            declared,
            dir,
        });
    }
    Ok(found)
}

/// The programs of the chosen listings: a debug and a release build, each set once it is done
/// (a trial waits for the one its listing needs).
#[derive(Default)]
struct Builds {
    debug: OnceLock<Build>,
    release: OnceLock<Build>,
}

impl Builds {
    fn of(&self, release: bool) -> &OnceLock<Build> {
        if release { &self.release } else { &self.debug }
    }
}

/// The executables of one build, by package (= binary) name.
struct Build {
    executables: HashMap<String, PathBuf>,
    /// Why the build failed (printed once; each listing it leaves without a program says so).
    failed: Option<String>,
}

impl Build {
    fn failed(why: String) -> Self {
        Build {
            executables: HashMap::new(),
            failed: Some(why),
        }
    }

    /// Builds the binaries of `packages` (nothing when there are none).
    fn new(root: &Path, release: bool, packages: &[String]) -> Self {
        if packages.is_empty() {
            return Build {
                executables: HashMap::new(),
                failed: None,
            };
        }
        // Debug: the binaries, plus this test so that the dev-dependencies (and so the
        // features) are those of `cargo test`. Release: only the binaries.
        let mut args: Vec<&str> = Vec::new();
        if release {
            args.push("--release");
            for package in packages {
                args.extend(["--package", package]);
            }
        } else {
            args.extend(["--workspace", "--test", "output"]);
        }
        for package in packages {
            args.extend(["--bin", package]);
        }
        eprintln!(
            "building the programs of {} listing(s){}…",
            packages.len(),
            if release { " (release)" } else { "" }
        );
        match build(root, &args) {
            Ok(executables) => Build {
                executables,
                failed: None,
            },
            Err(e) => {
                eprintln!("error: `cargo build {}` failed:\n{e}", args.join(" "));
                Build::failed(format!("`cargo build {}` failed", args.join(" ")))
            }
        }
    }

    fn executable(&self, listing: &Listing) -> Result<&Path, String> {
        self.executables
            .get(&listing.package)
            .map(PathBuf::as_path)
            .ok_or_else(|| match &self.failed {
                Some(why) => format!("{why} (its output is printed above the test results)"),
                None => format!("cargo built no binary named {}", listing.package),
            })
    }
}

/// Runs `cargo build` with `args` at the root and returns the binaries it built (or found
/// up to date), by name, as cargo reports them. Cargo's own messages pass through to stderr.
fn build(root: &Path, args: &[&str]) -> Result<HashMap<String, PathBuf>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    // Without what cargo sets for this test's own run: a build script that watches one of
    // these (ring's watches CARGO_MANIFEST_DIR) would otherwise see it change between this
    // build and `cargo test`, and the two would rebuild each other's dependencies each time.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name == "OUT_DIR"
            || name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&name.as_ref())
        {
            command.env_remove(name.as_ref());
        }
    }
    let mut child = command
        .args([
            "build",
            "--quiet",
            "--message-format=json-render-diagnostics",
        ])
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    let mut executables = HashMap::new();
    let stdout = child.stdout.take().expect("piped");
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading cargo's messages: {e}"))?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && message["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"))
            && let (Some(name), Some(path)) = (
                message["target"]["name"].as_str(),
                message["executable"].as_str(),
            )
        {
            executables.insert(name.to_owned(), PathBuf::from(path));
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo: {e}"))?;
    if status.success() {
        Ok(executables)
    } else {
        Err(format!("cargo exited with {status} (its errors are above)"))
    }
}

/// Runs the listing and compares its output with `output.txt`.
fn check(listing: &Listing, build: &Build) -> Result<(), Failed> {
    let recorded = listing.recorded.as_ref().map_err(|e| {
        format!(
            "{e}\n(to record it, write `$ cargo run -p {0}` as its first line and run \
             `cargo xtask bless {0}`)",
            listing.package
        )
    })?;
    if recorded.command.package != listing.package {
        return Err(format!(
            "{}: the command runs package {}, not {}",
            recorded.path.display(),
            recorded.command.package,
            listing.package
        )
        .into());
    }
    let varies = declared_varies(listing.declared.as_ref()).map_err(|e| {
        format!(
            "{}/Cargo.toml: [package.metadata.output]: {e}",
            listing.dir.display()
        )
    })?;
    let mut program = Command::new(build.executable(listing)?);
    if listing.cpu_bound {
        book_support::at_low_priority(&mut program);
    }
    Ok(book_support::check_output(program, recorded, &varies)?)
}

/// The [`Varies`] that `[package.metadata.output]` declares (nothing varies without one).
fn declared_varies(declared: Option<&toml::Value>) -> Result<Varies, String> {
    let mut varies = Varies::nothing();
    let Some(declared) = declared else {
        return Ok(varies);
    };
    let table = declared.as_table().ok_or("must be a table")?;
    for (key, value) in table {
        let flag = || {
            value
                .as_bool()
                .ok_or_else(|| format!("{key} must be true or false"))
        };
        match key.as_str() {
            "cpu-bound" => {
                flag()?;
            }
            "durations" if flag()? => varies = varies.durations(),
            "ratios" if flag()? => varies = varies.ratios(),
            "pids" if flag()? => varies = varies.pids(),
            "durations" | "ratios" | "pids" => {}
            "redact" => {
                let wrong = || {
                    "redact must be a list of { as = \"[NAME]\", pattern = '…' }, NAME in \
                     capital letters and _"
                        .to_string()
                };
                for entry in value.as_array().ok_or_else(wrong)? {
                    let field = |name| entry.get(name).and_then(toml::Value::as_str);
                    let (Some(placeholder), Some(pattern)) = (field("as"), field("pattern")) else {
                        return Err(wrong());
                    };
                    let name = placeholder
                        .strip_prefix('[')
                        .and_then(|p| p.strip_suffix(']'))
                        .ok_or_else(wrong)?;
                    if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                    {
                        return Err(wrong());
                    }
                    regex::Regex::new(pattern).map_err(|e| format!("redact {placeholder}: {e}"))?;
                    // Placeholders live as long as the test process (snapbox wants `'static`).
                    varies = varies.redact(placeholder.to_owned().leak(), pattern);
                }
            }
            "any-order" => {
                let wrong = || "any-order must be a list of patterns".to_string();
                for pattern in value.as_array().ok_or_else(wrong)? {
                    let pattern = pattern.as_str().ok_or_else(wrong)?;
                    regex::Regex::new(pattern).map_err(|e| format!("any-order: {e}"))?;
                    varies = varies.any_order(pattern);
                }
            }
            other => {
                return Err(format!(
                    "unknown key {other:?} (known: durations, ratios, pids, redact, any-order, cpu-bound)"
                ));
            }
        }
    }
    Ok(varies)
}

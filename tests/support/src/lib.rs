//! Test helpers shared by the listings.
//!
//! Every listing that has an `output.txt` adds a one-line integration test:
//!
//! ```ignore
//! // listings/<section>/<name>/tests/output.rs
//! book_support::output_test!();
//! ```
//!
//! The test runs the listing's binary with the arguments written on the first line of
//! `output.txt` (`$ cargo run -p NAME -- ARGS`) and fails when the printed text differs from
//! the recorded one. `cargo xtask bless` re-records every `output.txt` from a real run.
//!
//! Other recordings shown in the book (a session with a server, say) are checked with
//! [`assert_matches_recording`], which `cargo xtask bless` re-records too.
//!
//! Tests that time real work (threads, rayon, processes) use [`assert_faster`] ("the parallel
//! version is faster than the sequential one") and [`assert_waits_overlap`] ("concurrent
//! waits take the longest wait, not the sum"): generous ratios, the fastest of several runs,
//! so another build on the same cores does not make them fail.
//!
//! ```ignore
//! book_support::assert_faster("2 threads vs 1", 1.3, || sum(1), || sum(2));
//! let waits = [Duration::from_millis(50); 4];
//! book_support::assert_waits_overlap("4 threads", &waits, || parallel_io(&waits, 4));
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::thread;
use std::time::{Duration, Instant};

use regex::Regex;

/// The longest a listing may run before the drift test gives up on it.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Defines the `#[test]` that compares this package's binary with its `output.txt`.
#[macro_export]
macro_rules! output_test {
    () => {
        #[test]
        fn output_txt_matches_a_fresh_run() {
            $crate::check_output(
                env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME"))),
                env!("CARGO_PKG_NAME"),
                env!("CARGO_MANIFEST_DIR"),
            );
        }
    };
}

/// The command line recorded on the first line of an `output.txt`.
#[derive(Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The line itself, e.g. `$ cargo run --release -p gil-free -- 4`.
    pub command: String,
    /// The package named by `-p`.
    pub package: String,
    /// Whether the program was run with `--release`.
    pub release: bool,
    /// The arguments after `--`.
    pub args: Vec<String>,
}

/// Parses the first line of an `output.txt`.
pub fn parse_command(line: &str) -> Result<Recorded, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let ["$", "cargo", "run", rest @ ..] = words.as_slice() else {
        return Err(format!(
            "the first line must be `$ cargo run … -p NAME`, found {line:?}"
        ));
    };
    let (opts, args) = match rest.iter().position(|w| *w == "--") {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let mut package = None;
    let mut release = false;
    let mut opts = opts.iter();
    while let Some(opt) = opts.next() {
        match *opt {
            "-p" | "--package" => package = opts.next().map(|p| p.to_string()),
            "--release" | "-r" => release = true,
            "-q" | "--quiet" => {}
            other => return Err(format!("unsupported cargo option {other:?} in {line:?}")),
        }
    }
    let package = package.ok_or_else(|| format!("no `-p NAME` in {line:?}"))?;
    Ok(Recorded {
        command: line.to_string(),
        package,
        release,
        args: args.iter().map(|a| a.to_string()).collect(),
    })
}

/// What a finished program left behind.
#[derive(Debug)]
pub struct Finished {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` with stdin closed and its output captured, and waits for it at most
/// `timeout`: a program that does not finish is killed and the test fails, never hangs.
pub fn run_command(mut command: Command, timeout: Duration) -> Finished {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = Vec::new();
        stdout.read_to_end(&mut s).map(|_| s)
    });
    let err = thread::spawn(move || {
        let mut s = Vec::new();
        stderr.read_to_end(&mut s).map(|_| s)
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let text = |bytes: Vec<u8>, stream: &str| {
        String::from_utf8(bytes)
            .unwrap_or_else(|e| panic!("{what} printed invalid UTF-8 on {stream}: {e}"))
    };
    Finished {
        status,
        stdout: text(out.join().unwrap().unwrap(), "stdout"),
        stderr: text(err.join().unwrap().unwrap(), "stderr"),
    }
}

/// Runs `bin` with `args` and returns what it printed on stdout; panics if it fails or
/// does not finish within [`RUN_TIMEOUT`].
pub fn run_program(bin: &str, args: &[String]) -> String {
    let mut command = Command::new(bin);
    command.args(args);
    let run = run_command(command, RUN_TIMEOUT);
    assert!(
        run.status.success(),
        "{bin} failed with {}\n--- stderr ---\n{}",
        run.status,
        run.stderr
    );
    run.stdout
}

/// Makes the parts of a line that legitimately vary between runs comparable:
/// durations become `<時間>` and every other number becomes `<数>`.
/// Everything else (the words, the punctuation, the number of lines) must match.
pub fn normalise(line: &str) -> String {
    // `Duration`'s Debug output changes unit with the value (`950µs`, `1.2ms`, `3s`),
    // so a duration is replaced as a whole; the character after an ASCII unit is kept.
    static DURATION: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\d+(?:\.\d+)?\s?(?:(?:ns|µs|us|ms|s)([^A-Za-z0-9_]|$)|ミリ秒|秒)").unwrap()
    });
    static NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d+(?:\.\d+)?").unwrap());
    let line = DURATION.replace_all(line.trim_end(), "<時間>$1");
    NUMBER.replace_all(&line, "<数>").into_owned()
}

/// Counts the normalised lines of `text`: concurrent programs may print them in any order.
fn line_counts(text: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        *counts.entry(normalise(line)).or_default() += 1;
    }
    counts
}

/// Compares a fresh run of `bin` with `dir/output.txt` and panics with a readable diff.
pub fn check_output(bin: &str, package: &str, dir: &str) {
    let path = Path::new(dir).join("output.txt");
    let recorded = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (record it with `cargo xtask bless`)",
            path.display()
        )
    });
    let (first, expected) = recorded.split_once('\n').unwrap_or((&recorded, ""));
    let cmd = parse_command(first).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        cmd.package,
        package,
        "{}: the command runs another package",
        path.display()
    );

    let actual = run_program(bin, &cmd.args);
    if let Some(report) = differences(expected, &actual) {
        panic!(
            "{} no longer matches a run of `{}` (numbers and line order are ignored):\n{report}\
             If the change is intended, re-record the outputs with `cargo xtask bless`.",
            path.display(),
            cmd.command
        );
    }
}

/// The environment variable under which [`assert_matches_recording`] records instead of
/// comparing; `cargo xtask bless` sets it.
pub const BLESS_VAR: &str = "BOOK_BLESS";

/// How strictly [`assert_matches_recording`] compares a recording with a fresh run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Byte for byte (for transcripts without numbers or timing).
    Exact,
    /// Line by line in order, numbers and durations ignored ([`normalise`]).
    Lines,
    /// The same lines in any order, numbers and durations ignored (concurrent output).
    AnyOrder,
}

/// For recordings other than `output.txt` (a terminal session shown in the book, say):
/// compares `actual` with the file at `path` as `how` says and panics with the difference.
/// With `BOOK_BLESS=1` (set by `cargo xtask bless`) it writes `actual` to `path` instead.
pub fn assert_matches_recording(path: impl AsRef<Path>, actual: &str, how: Match) {
    let path = path.as_ref();
    if std::env::var_os(BLESS_VAR).is_some() {
        fs::write(path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let recorded = fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (record it with `cargo xtask bless`)",
            path.display()
        )
    });
    let report = match how {
        Match::Exact => (recorded != actual).then(|| "  (the text differs)\n".to_string()),
        Match::Lines => {
            let lines = |t: &str| t.lines().map(normalise).collect::<Vec<_>>();
            let (want, got) = (lines(&recorded), lines(actual));
            want.iter()
                .zip(&got)
                .position(|(w, g)| w != g)
                .or((want.len() != got.len()).then(|| want.len().min(got.len())))
                .map(|i| {
                    let at =
                        |v: &Vec<String>| v.get(i).cloned().unwrap_or_else(|| "(nothing)".into());
                    format!(
                        "  line {}: recorded {:?}\n  line {}: now      {:?}\n",
                        i + 1,
                        at(&want),
                        i + 1,
                        at(&got)
                    )
                })
        }
        Match::AnyOrder => differences(&recorded, actual),
    };
    if let Some(report) = report {
        panic!(
            "{} no longer matches a fresh run ({how:?}):\n{report}\
             If the change is intended, re-record it with `cargo xtask bless`.\n--- fresh run ---\n{actual}",
            path.display()
        );
    }
}

/// `None` when `expected` and `actual` have the same normalised lines, else a report of
/// the lines that are missing (`-`) or new (`+`).
fn differences(expected: &str, actual: &str) -> Option<String> {
    let (want, got) = (line_counts(expected), line_counts(actual));
    if want == got {
        return None;
    }
    let mut report = String::new();
    for (line, n) in &want {
        let m = got.get(line).copied().unwrap_or(0);
        if m < *n {
            report.push_str(&format!("  - {line}   (recorded {n}×, now {m}×)\n"));
        }
    }
    for (line, m) in &got {
        let n = want.get(line).copied().unwrap_or(0);
        if n < *m {
            report.push_str(&format!("  + {line}   (recorded {n}×, now {m}×)\n"));
        }
    }
    Some(report)
}

/// How many times the timing helpers run a measurement before giving up. A busy machine
/// (another build on the same cores) only ever makes a run slower, so the fastest of a few
/// runs is the one closest to what the program does on a quiet machine.
pub const TIMING_ATTEMPTS: usize = 5;

/// The wall-clock time of one call of `f`.
pub fn time(mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// Asserts that `fast` is at least `ratio` times faster than `slow` (e.g. `1.3` for "the
/// parallel version is clearly faster"). Both are run up to [`TIMING_ATTEMPTS`] times,
/// alternately, and the fastest run of each is compared: the assertion passes as soon as
/// the two fastest runs show the ratio, and fails only if no attempt did. Choose a ratio
/// well below what a quiet machine shows (2 threads on 2 cores give ~1.9×; ask for 1.3×).
///
/// On a machine with a single core a parallel version cannot be faster: the comparison is
/// skipped there with a message (it is about the machine, not the code).
/// Returns the best ratio seen.
pub fn assert_faster(
    what: &str,
    ratio: f64,
    mut slow: impl FnMut(),
    mut fast: impl FnMut(),
) -> f64 {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        eprintln!("{what}: skipped, this machine runs one thread at a time ({cores} core)");
        return 1.0;
    }
    let (mut best_slow, mut best_fast) = (Duration::MAX, Duration::MAX);
    for _ in 0..TIMING_ATTEMPTS {
        best_slow = best_slow.min(time(&mut slow));
        best_fast = best_fast.min(time(&mut fast));
        let seen = best_slow.as_secs_f64() / best_fast.as_secs_f64().max(1e-9);
        if seen >= ratio {
            return seen;
        }
    }
    panic!(
        "{what}: expected at least {ratio:.2}× faster, but the fastest of {TIMING_ATTEMPTS} runs \
         took {best_fast:?} against {best_slow:?} ({:.2}×)",
        best_slow.as_secs_f64() / best_fast.as_secs_f64().max(1e-9)
    );
}

/// Asserts that `f`, which waits for every duration in `waits` concurrently, takes about
/// as long as the longest wait and not their sum: every run takes at least the longest wait
/// (waits cannot be shortened), and the fastest of up to [`TIMING_ATTEMPTS`] runs finishes
/// before the midpoint between the longest wait and the sum. For waits only: for async code
/// prefer tokio's paused clock (`#[tokio::test(start_paused = true)]`), which is exact.
/// Returns the fastest run.
pub fn assert_waits_overlap(what: &str, waits: &[Duration], mut f: impl FnMut()) -> Duration {
    let longest = waits.iter().copied().max().unwrap_or_default();
    let sum: Duration = waits.iter().sum();
    let limit = longest + (sum - longest) / 2;
    let mut best = Duration::MAX;
    for _ in 0..TIMING_ATTEMPTS {
        let took = time(&mut f);
        assert!(
            took >= longest,
            "{what}: took {took:?}, less than the longest wait {longest:?}"
        );
        best = best.min(took);
        if best < limit {
            return best;
        }
    }
    panic!(
        "{what}: the waits did not overlap: the fastest of {TIMING_ATTEMPTS} runs took {best:?}; \
         one wait is {longest:?}, all of them in a row {sum:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_recorded_command() {
        let c = parse_command("$ cargo run --release -p gil-free -- 4 x").unwrap();
        assert_eq!(c.package, "gil-free");
        assert!(c.release);
        assert_eq!(c.args, ["4", "x"]);
        assert!(parse_command("$ cargo build -p x").is_err());
        assert!(parse_command("$ cargo run").is_err());
    }

    #[test]
    fn numbers_and_durations_are_normalised_words_are_not() {
        assert_eq!(normalise("経過時間: 201.3ms"), "経過時間: <時間>");
        assert_eq!(
            normalise("経過: 1.02秒、速度 1.98倍"),
            "経過: <時間>、速度 <数>倍"
        );
        assert_eq!(
            normalise("PID 4242 が終了 (ThreadId(3))"),
            "PID <数> が終了 (ThreadId(<数>))"
        );
        assert_eq!(normalise("12µs, 3s)"), "<時間>, <時間>)");
        assert_ne!(normalise("スレッドA: 完了"), normalise("スレッドA: 開始"));
    }

    #[test]
    fn recordings_are_compared_as_strictly_as_asked() {
        let dir = std::env::temp_dir().join(format!("book-support-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rec.txt");
        fs::write(&path, "a 1\nb\n").unwrap();
        let ok = |actual: &str, how| {
            std::panic::catch_unwind(|| assert_matches_recording(&path, actual, how)).is_ok()
        };
        assert!(ok("a 1\nb\n", Match::Exact));
        assert!(!ok("a 2\nb\n", Match::Exact));
        assert!(ok("a 2\nb\n", Match::Lines));
        assert!(!ok("b\na 2\n", Match::Lines));
        assert!(!ok("a 2\n", Match::Lines));
        assert!(ok("b\na 2\n", Match::AnyOrder));
        assert!(!ok("b\nc\n", Match::AnyOrder));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn line_order_does_not_matter_but_every_line_counts() {
        assert_eq!(line_counts("a 1\nb\n"), line_counts("b\na 2\n"));
        assert_ne!(line_counts("a\na\n"), line_counts("a\n"));
    }

    #[test]
    fn timing_helpers_pass_on_real_differences_and_fail_on_none() {
        let sleep = |ms| move || thread::sleep(Duration::from_millis(ms));
        assert!(assert_faster("sleep", 1.5, sleep(40), sleep(10)) >= 1.5);
        let same = std::panic::catch_unwind(|| assert_faster("same", 1.5, sleep(5), sleep(5)));
        assert!(same.is_err() || thread::available_parallelism().map_or(true, |n| n.get() < 2));

        let waits = [Duration::from_millis(30), Duration::from_millis(20)];
        let overlapped = || {
            thread::scope(|s| {
                for w in waits {
                    s.spawn(move || thread::sleep(w));
                }
            })
        };
        assert!(assert_waits_overlap("scoped", &waits, overlapped) >= waits[0]);
        let in_a_row = || waits.iter().for_each(|w| thread::sleep(*w));
        let failed =
            std::panic::catch_unwind(|| assert_waits_overlap("in a row", &waits, in_a_row));
        assert!(failed.is_err());
    }
}

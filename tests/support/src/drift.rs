//! The drift test: a fresh run of a listing compared with its recorded `output.txt`.
//!
//! The comparison is exact — every character, every number, the order of the lines —
//! except for what the listing declares (a [`Varies`]; the listings say it in their
//! `Cargo.toml`, which the drift test at the root, `tests/output.rs`, reads):
//! values that change from run to run are redacted on both sides (snapbox's
//! [`Redactions`]: the recorded `200.5ms` and the fresh `201.3ms` both become `[ELAPSED]`),
//! and lines printed by concurrent workers may be declared to come in any order.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;
use snapbox::report::Palette;
use snapbox::{Assert, Data, Redactions};

use crate::BLESS_VAR;

/// What legitimately differs between two runs of a listing; everything else must match.
/// For example, `Varies::nothing().durations().any_order(r"^スレッド[AB]: ")`: the elapsed
/// time, and the lines of the two threads (they run concurrently).
#[derive(Debug, Clone, Default)]
pub struct Varies {
    redactions: Vec<(&'static str, Regex)>,
    any_order: Vec<Regex>,
}

impl Varies {
    /// Nothing varies: the fresh run must print exactly the recorded text.
    pub fn nothing() -> Self {
        Self::default()
    }

    /// Measured durations printed with `{:?}` (`352.0ms`, `3.5µs`, `1.2s`) → `[ELAPSED]`.
    /// Fixed durations written into the text (`100ミリ秒`) are compared.
    pub fn durations(self) -> Self {
        self.redact(
            "[ELAPSED]",
            r"(?<redacted>\d+(?:\.\d+)?(?:ns|µs|us|ms|s))(?:[^A-Za-z0-9]|$)",
        )
    }

    /// Measured ratios (`1.97倍`) → `[RATIO]倍`.
    pub fn ratios(self) -> Self {
        self.redact("[RATIO]", r"(?<redacted>\d+(?:\.\d+)?)倍")
    }

    /// Process ids (`PID: 4242`, `PID 4242`) → `[PID]`.
    pub fn pids(self) -> Self {
        self.redact("[PID]", r"PID[:：]? ?(?<redacted>\d+)")
    }

    /// Anything else that varies: the text matched by `pattern` (or by its capture group
    /// named `redacted`, if it has one) becomes `placeholder` on both sides. `placeholder`
    /// is `[` + capital letters or `_` + `]`, e.g. `[PORT]`.
    pub fn redact(mut self, placeholder: &'static str, pattern: &str) -> Self {
        let regex = Regex::new(pattern)
            .unwrap_or_else(|e| panic!("Varies::redact({placeholder}, {pattern:?}): {e}"));
        self.redactions.push((placeholder, regex));
        self
    }

    /// Lines matching `pattern` (on the recorded text, before redaction) are printed by
    /// concurrent workers: they may come in any order, among themselves and between the
    /// other lines, but each must be there as often as recorded. The other lines are
    /// compared in order.
    pub fn any_order(mut self, pattern: &str) -> Self {
        let regex =
            Regex::new(pattern).unwrap_or_else(|e| panic!("Varies::any_order({pattern:?}): {e}"));
        self.any_order.push(regex);
        self
    }

    /// Every line may come in any order (all of them are printed concurrently).
    pub fn any_line_order(self) -> Self {
        self.any_order("")
    }

    /// What is declared, for the failure message.
    fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .redactions
            .iter()
            .map(|(placeholder, re)| format!("{placeholder} = /{re}/"))
            .collect();
        parts.extend(
            self.any_order
                .iter()
                .map(|re| format!("lines /{re}/ in any order")),
        );
        if parts.is_empty() {
            "nothing (exact comparison)".into()
        } else {
            parts.join(", ")
        }
    }

    fn redactions(&self) -> Redactions {
        let mut redactions = Redactions::new();
        for (placeholder, regex) in &self.redactions {
            redactions
                .insert(placeholder, regex.clone())
                .unwrap_or_else(|e| panic!("placeholder {placeholder}: {e}"));
        }
        redactions
    }

    /// The lines of `text` compared in order, and those that may come in any order.
    fn split(&self, text: &str) -> (String, String) {
        let (mut ordered, mut any) = (String::new(), String::new());
        for line in text.split_inclusive('\n') {
            let line_text = line.trim_end_matches('\n');
            if self.any_order.iter().any(|re| re.is_match(line_text)) {
                any.push_str(line_text);
                any.push('\n');
            } else {
                ordered.push_str(line);
            }
        }
        (ordered, any)
    }
}

/// Compares `actual` with `expected` as `varies` allows. `Err` holds a readable diff.
pub fn compare(expected: &str, actual: &str, varies: &Varies) -> Result<(), String> {
    let redactions = varies.redactions();
    let assert = Assert::new().palette(Palette::plain());
    let (want_ordered, want_any) = varies.split(expected);
    let (got_ordered, got_any) = varies.split(actual);
    let mut report = String::new();
    let redacted = |text: &str| Data::text(redactions.redact(text)).raw();
    if let Err(e) = assert.try_eq(
        Some(&"a fresh run"),
        Data::text(redactions.redact(&got_ordered)),
        redacted(&want_ordered),
    ) {
        let _ = writeln!(report, "{e}");
    }
    if let Err(e) = assert.try_eq(
        Some(&"a fresh run (lines in any order)"),
        Data::text(redactions.redact(&got_any)),
        redacted(&want_any).unordered(),
    ) {
        let _ = writeln!(report, "{e}");
    }
    if report.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "compared exactly, except: {}\n{report}",
            varies.describe()
        ))
    }
}

/// An `output.txt`: the command on its first line and the text the program printed.
#[derive(Debug)]
pub struct OutputTxt {
    pub path: PathBuf,
    pub command: crate::Recorded,
    pub text: String,
}

impl OutputTxt {
    /// Reads `dir/output.txt`.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let path = dir.join("output.txt");
        let recorded = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (first, text) = recorded.split_once('\n').unwrap_or((&recorded, ""));
        let command =
            crate::parse_command(first).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self {
            text: text.to_owned(),
            command,
            path,
        })
    }
}

/// Runs `program` (a listing's executable) with the arguments of `recorded`'s command line
/// and compares what it prints with the recording as `varies` allows. `Err` says what differs
/// and how to fix it.
pub fn check_output(
    mut program: Command,
    recorded: &OutputTxt,
    varies: &Varies,
) -> Result<(), String> {
    program.args(&recorded.command.args);
    let run = crate::try_run_command(program, crate::RUN_TIMEOUT)?;
    if !run.status.success() {
        return Err(format!(
            "`{}` failed with {}\n--- stderr ---\n{}",
            recorded.command.command, run.status, run.stderr
        ));
    }
    compare(&recorded.text, &run.stdout, varies).map_err(|report| {
        format!(
            "{} no longer matches a run of `{}`; {report}\
             If the change is intended, re-record it with `cargo xtask bless {}`; if the \
             difference is something that varies between runs, declare it in the listing's \
             Cargo.toml under [package.metadata.output].",
            recorded.path.display(),
            recorded.command.command,
            recorded.command.package,
        )
    })
}

/// For recordings other than `output.txt` (a terminal session shown in the book, say):
/// compares `actual` with the file at `path`, exactly except for what `varies` declares
/// (a [`Varies`]), and panics with the difference. With `BOOK_BLESS=1` (set
/// by `cargo xtask bless`) it writes `actual` to `path` instead.
pub fn assert_matches_recording(path: impl AsRef<Path>, actual: &str, varies: Varies) {
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
    if let Err(report) = compare(&recorded, actual, &varies) {
        panic!(
            "{} no longer matches a fresh run; {report}\
             If the change is intended, re-record it with `cargo xtask bless`.",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(expected: &str, actual: &str, varies: &Varies) -> bool {
        compare(expected, actual, varies).is_ok()
    }

    #[test]
    fn by_default_every_number_and_the_line_order_count() {
        let exact = Varies::nothing();
        assert!(ok("最終的な値: 1000\nb\n", "最終的な値: 1000\nb\n", &exact));
        assert!(!ok("最終的な値: 1000\n", "最終的な値: 999\n", &exact));
        assert!(!ok("a\nb\n", "b\na\n", &exact));
        assert!(!ok("a\nb\n", "a\n", &exact));
        assert!(!ok("a\n", "a \n", &exact));
    }

    #[test]
    fn declared_durations_ratios_and_pids_are_redacted_and_nothing_else() {
        let v = Varies::nothing().durations().ratios().pids();
        assert!(ok(
            "経過時間 200.5ms、13.1msで、3.5µs（1.97倍）PID: 12 PID 34で\n",
            "経過時間 201.3ms、9.0msで、111.0ns（2.01倍）PID: 56 PID 7で\n",
            &v
        ));
        // a fixed duration in the text, and a count, are still compared
        assert!(!ok("100ミリ秒を4回\n", "100ミリ秒を5回\n", &v));
        assert!(!ok("200ミリ秒\n", "300ミリ秒\n", &v));
        assert!(!ok("合計1000件、200.5ms\n", "合計999件、200.5ms\n", &v));
        assert!(!ok("a 1.2s\n", "b 1.2s\n", &v));
    }

    #[test]
    fn only_the_declared_lines_may_move() {
        let v = Varies::nothing().any_order("^スレッド");
        let recorded = "開始\nスレッドA: 完了\nスレッドB: 完了\n結果\n";
        assert!(ok(
            recorded,
            "開始\nスレッドB: 完了\n結果\nスレッドA: 完了\n",
            &v
        ));
        assert!(!ok(
            recorded,
            "結果\nスレッドB: 完了\nスレッドA: 完了\n開始\n",
            &v
        ));
        assert!(!ok(recorded, "開始\nスレッドA: 完了\n結果\n", &v));
        assert!(!ok(
            recorded,
            "開始\nスレッドA: 完了\nスレッドA: 完了\n結果\n",
            &v
        ));
        assert!(ok("b\na\n", "a\nb\n", &Varies::nothing().any_line_order()));
    }

    #[test]
    fn recordings_are_compared_as_declared() {
        let dir = std::env::temp_dir().join(format!("book-support-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rec.txt");
        fs::write(&path, "a 1.5ms\nb\n").unwrap();
        let ok = |actual: &str, varies: Varies| {
            std::panic::catch_unwind(|| assert_matches_recording(&path, actual, varies)).is_ok()
        };
        let exact = Varies::nothing;
        let timed = || Varies::nothing().durations();
        let any_order = || Varies::nothing().durations().any_line_order();
        assert!(ok("a 1.5ms\nb\n", exact()));
        assert!(!ok("a 2.5ms\nb\n", exact()));
        assert!(ok("a 2.5ms\nb\n", timed()));
        assert!(!ok("b\na 2.5ms\n", timed()));
        assert!(!ok("a 2.5ms\n", timed()));
        assert!(ok("b\na 2.5ms\n", any_order()));
        assert!(!ok("b\nc\n", any_order()));
        fs::remove_dir_all(&dir).unwrap();
    }
}

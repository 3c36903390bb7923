//! Timing checks that tolerate a busy machine: generous ratios, the fastest of several runs.

use std::io::Write as _;
use std::thread;
use std::time::{Duration, Instant};

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
        // straight to stderr: the test harness would hide an `eprintln!` of a passing test
        let _ = writeln!(
            std::io::stderr(),
            "note: {what}: skipped, this machine runs one thread at a time ({cores} core)"
        );
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
    fn timing_helpers_pass_on_real_differences_and_fail_on_none() {
        let sleep = |ms| move || thread::sleep(Duration::from_millis(ms));
        assert!(assert_faster("sleep", 1.5, sleep(40), sleep(10)) >= 1.5);
        // The same work is never 3× faster, even when another program delays some runs.
        let same = std::panic::catch_unwind(|| assert_faster("same", 3.0, sleep(10), sleep(10)));
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

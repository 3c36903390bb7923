//! Test helpers shared by the listings.
//!
//! Every listing that has an `output.txt` is run by the drift test at the root of the
//! workspace (`tests/output.rs`) as the first line of `output.txt` says
//! (`$ cargo run [--release] -p NAME [-- ARGS]`; `--release` runs a release build), and the
//! test fails when the printed text differs from the recorded one: every character, every
//! number and the order of the lines count. A listing whose output varies between runs says
//! exactly what varies in its `Cargo.toml`, which the drift test turns into a [`Varies`]:
//!
//! ```toml
//! # the elapsed time, and the lines of the two threads (they run concurrently)
//! [package.metadata.output]
//! durations = true
//! any-order = ['^スレッド[AB]: ']
//! ```
//!
//! `cargo xtask bless NAME` re-records an `output.txt` from a real run. Other recordings shown
//! in the book (a session with a server, say) are checked with [`assert_matches_recording`],
//! which `cargo xtask bless` re-records too. Exact compiler text (the trybuild `.stderr`
//! files) is compared only on the compiler it was recorded with: [`on_recorded_toolchain`].
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

#[cfg(feature = "drift")]
mod drift;
mod timing;
mod toolchain;

#[cfg(feature = "drift")]
pub use drift::{OutputTxt, Varies, assert_matches_recording, check_output, compare};

/// The environment variable under which [`assert_matches_recording`] records instead of
/// comparing (and the compiler-text checks run on any compiler); `cargo xtask bless` sets it.
pub const BLESS_VAR: &str = "BOOK_BLESS";

pub use timing::{TIMING_ATTEMPTS, assert_faster, assert_waits_overlap, time};
pub use toolchain::{
    RECORDED_FILE, current_rustc, on_recorded_toolchain, recorded_rustc, release, repository_root,
};

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The longest a listing may run before the drift test gives up on it.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest the drift test waits for `cargo build` of the listings.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(900);

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
pub fn run_command(command: Command, timeout: Duration) -> Finished {
    try_run_command(command, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// [`run_command`] that returns what went wrong (the program did not start, did not finish
/// within `timeout`, or printed invalid UTF-8) instead of panicking.
pub fn try_run_command(mut command: Command, timeout: Duration) -> Result<Finished, String> {
    let what = format!("{command:?}");
    // Its own process group, so that what it starts can be killed with it.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let (tx, rx) = mpsc::channel();
    for (stream, mut pipe) in [
        (
            "stdout",
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        ),
        ("stderr", Box::new(child.stderr.take().unwrap())),
    ] {
        let tx = tx.clone();
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = tx.send((stream, pipe.read_to_end(&mut bytes).map(|_| bytes)));
        });
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("{what}: {e}"))? {
            break status;
        }
        if Instant::now() > deadline {
            kill_group(&mut child);
            return Err(format!("{what} did not finish within {timeout:?}"));
        }
        thread::sleep(Duration::from_millis(5));
    };
    // The pipes close when every process that holds them has exited: wait for that too.
    let (mut stdout, mut stderr) = (None, None);
    while stdout.is_none() || stderr.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((stream, bytes)) = rx.recv_timeout(left) else {
            kill_group(&mut child);
            return Err(format!(
                "{what} exited ({status}), but something it started kept its output open for \
                 longer than {timeout:?} (killed)"
            ));
        };
        let bytes = bytes.map_err(|e| format!("{what}: reading {stream}: {e}"))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| format!("{what} printed invalid UTF-8 on {stream}: {e}"))?;
        *if stream == "stdout" {
            &mut stdout
        } else {
            &mut stderr
        } = Some(text);
    }
    Ok(Finished {
        status,
        stdout: stdout.unwrap_or_default(),
        stderr: stderr.unwrap_or_default(),
    })
}

/// Keeps the panics a test causes on purpose (their message contains one of `expected`) off
/// the terminal; every other panic is reported as before. With `RUST_BACKTRACE=1` the default
/// hook loads debug information to print a backtrace, ~0.1 s for the first panic of a debug
/// build. The hook belongs to the process, so the first call sets it and later calls keep it.
pub fn silence_expected_panics(expected: &'static [&'static str]) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let on_purpose = info
                .payload_as_str()
                .is_some_and(|message| expected.iter().any(|e| message.contains(e)));
            if !on_purpose {
                default_hook(info);
            }
        }));
    });
}

/// Makes `command` run at a lower CPU priority: 10 nice levels below this process (at most
/// nice 19). A benchmark started this way beside programs that mostly sleep gets the CPU they
/// leave: when one of them wakes up, the kernel runs it first, so its sleeps and timeouts are
/// hardly stretched. Against a program that keeps a core busy at this process's priority it
/// gets about a tenth of that core (nice 19 would be a seventieth: starved, not slowed).
/// Elsewhere than Unix the priority is left as it is.
pub fn at_low_priority(command: &mut Command) {
    #[cfg(unix)]
    {
        // Relative to this process: asking for a fixed nice 10 under a `nice -n 15 cargo test`
        // would be a raise, which the kernel refuses without privileges.
        // SAFETY: getpriority(2) only reads this process's nice value (with PRIO_PROCESS and
        // 0 it cannot fail; -1 is a valid nice value).
        let nice = (unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) } + 10).min(19);
        let lower = move || {
            // Between fork and exec only async-signal-safe code may run. setpriority is not on
            // POSIX's list, but glibc, musl and Darwin implement it as the bare system call, and
            // reading errno afterwards does not allocate.
            // SAFETY: a system call on this (single-threaded, forked) process's own priority.
            match unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        };
        // SAFETY: the closure only makes that system call (see above).
        unsafe { std::os::unix::process::CommandExt::pre_exec(command, lower) };
    }
    #[cfg(not(unix))]
    let _ = command;
}

/// Kills `child` and every process in its group (it leads one: [`try_run_command`]).
fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group; no memory involved.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
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
}

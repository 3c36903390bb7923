//! Load on the chat server with its default settings (not a test).
//!
//! `cargo bench -p chat` builds the server in release mode, starts it on loopback and runs, from
//! this process, the scenario chosen after `--` (all three by default):
//!
//! - `throughput`: 1,000 clients in rooms that talk (delivered messages/s, send-to-receive p50/p99,
//!   the server's peak RSS). `--rooms 1` puts everybody in one room, `--interval-ms 1000` makes
//!   each client say one message a second instead of as fast as the closed loop allows.
//! - `burst`: 2,000 clients connect at the same moment and keep reading (how many were cut).
//! - `flood`: one client writes 60,000 lines as fast as it can to a room of 100 listeners
//!   (what the flooder and the listeners saw).
//!
//! For example `cargo bench -p chat --bench load -- throughput --rooms 1 --messages 5`.
//! `--server-arg=--flood-burst=100` passes an option to the server (repeatable).
//! Under `cargo test` (no `--bench` argument) it runs a small configuration of each scenario, so
//! the benchmark keeps compiling and working.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use clap::{Parser, ValueEnum};
use common::Server;
use common::load::{Load, burst, flood};

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Scenario {
    Throughput,
    Burst,
    Flood,
}

#[derive(Parser, Debug)]
struct Args {
    /// The scenarios to run (all of them when none is given).
    scenarios: Vec<Scenario>,
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Messages each client sends (the default flood burst is 10).
    #[arg(long, default_value_t = 10)]
    messages: usize,
    /// Pause between two messages of a client, in milliseconds (0: closed loop, as fast as possible).
    #[arg(long, default_value_t = 0)]
    interval_ms: u64,
    /// Clients that connect at once in the `burst` scenario.
    #[arg(long, default_value_t = 2000)]
    burst_clients: usize,
    /// Lines the flooder sends in the `flood` scenario.
    #[arg(long, default_value_t = 60_000)]
    flood_lines: usize,
    /// Listeners in the flooder's room.
    #[arg(long, default_value_t = 100)]
    listeners: usize,
    /// An option for the server, e.g. `--server-arg=--sendq=256KiB` (repeatable).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Passed by `cargo bench`; without it this is the quick run of `cargo test`.
    #[arg(long)]
    bench: bool,
}

#[tokio::main]
async fn main() {
    let mut args = Args::parse();
    if !args.bench {
        args.clients = 40;
        args.rooms = 4;
        args.messages = 3;
        args.burst_clients = 200;
        args.flood_lines = 5000;
        args.listeners = 5;
        // After its burst the flooder gets a line through every 100 ms instead of 500 ms, and is
        // cut after 200 ms of that instead of 30 s (the listeners still hear a few throttled
        // lines before the cut, as with the defaults).
        args.server_args.push("--flood-interval=100ms".into());
        args.server_args.push("--flood-kick=200ms".into());
    }
    let scenarios = if args.scenarios.is_empty() {
        vec![Scenario::Throughput, Scenario::Burst, Scenario::Flood]
    } else {
        args.scenarios.clone()
    };
    let most = args.clients.max(args.burst_clients) + args.listeners;
    common::ensure_open_files(2 * most as u64 + 256);
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let server_args: Vec<&str> = args.server_args.iter().map(String::as_str).collect();
    println!("chat-server ({profile}), options: {server_args:?}");
    for scenario in scenarios {
        // A fresh server for each scenario, so one does not disturb the next.
        let server = Server::start_with(common::SERVER, &server_args, "warn");
        match scenario {
            Scenario::Throughput => throughput(&args, &server).await,
            Scenario::Burst => {
                let report = burst(server.tcp, args.burst_clients).await;
                println!(
                    "burst: {} clients connected at once, all in the lobby after {:.2?}",
                    report.clients, report.join_time
                );
                println!(
                    "  disconnected: {}; heard the message sent after the burst: {} of {}; \
                     most lines received by one client: {}",
                    report.disconnected, report.heard_after, report.clients, report.most_lines
                );
                assert_eq!(report.disconnected, 0);
            }
            Scenario::Flood => {
                let watch = Duration::from_secs(if args.bench { 60 } else { 10 });
                let settle = Duration::from_millis(if args.bench { 500 } else { 100 });
                let report =
                    flood(server.tcp, args.listeners, args.flood_lines, watch, settle).await;
                println!(
                    "flood: one client sends {} lines to a room of {} listeners",
                    args.flood_lines, report.listeners
                );
                println!(
                    "  the flooder wrote {} lines before TCP stopped it or it was cut",
                    report.written
                );
                match &report.cut {
                    Some((after, line)) => {
                        println!("  the flooder was cut after {after:.2?}: {line}")
                    }
                    None => println!("  the flooder was not cut within {watch:?}"),
                }
                println!(
                    "  each listener received {}..{} of its lines (the last after {:.2?}); \
                     listeners disconnected: {}",
                    report.heard.0,
                    report.heard.1,
                    report.last_heard,
                    report.listeners_disconnected
                );
                assert_eq!(report.listeners_disconnected, 0);
            }
        }
        if let Some(kib) = server.peak_rss_kib() {
            println!("  server peak RSS: {:.1} MiB", kib as f64 / 1024.0);
        }
    }
}

async fn throughput(args: &Args, server: &Server) {
    let load = Load {
        clients: args.clients,
        rooms: args.rooms,
        messages: args.messages,
        interval: Duration::from_millis(args.interval_ms),
        wave: 100,
    };
    let mut report = tokio::time::timeout(Duration::from_secs(600), load.run(server.tcp))
        .await
        .expect("the benchmark finished within 10 minutes");
    let room = load.clients.div_ceil(load.rooms);
    println!(
        "throughput: {} clients in {} rooms of {room}, {} messages each, interval {:?}",
        load.clients, load.rooms, load.messages, load.interval
    );
    println!(
        "  delivered {} messages in {:.2?} = {:.0} messages/s",
        report.delivered,
        report.elapsed,
        report.per_second()
    );
    let (p50, p99) = (report.percentile(0.50), report.percentile(0.99));
    println!("  latency from send to receive: p50 {p50:.2?}, p99 {p99:.2?}");
}

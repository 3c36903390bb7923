//! Throughput, latency and memory of the chat server with 1,000 clients (not a test).
//!
//! `cargo bench -p chat` builds the server in release mode, starts it on loopback, connects the
//! clients from this process and prints delivered messages per second, the send-to-receive
//! latency (p50/p99) and the server's peak RSS. Options go after `--`, for example
//! `cargo bench -p chat --bench load -- --rooms 1 --queue 4096` for one room of 1,000 people.
//!
//! Under `cargo test` (no `--bench` argument) it runs a small smoke configuration instead,
//! so the benchmark keeps compiling and working.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use clap::Parser;
use common::Server;
use common::load::Load;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Messages each client sends.
    #[arg(long, default_value_t = 20)]
    messages: usize,
    /// Pause between two messages of a client, in milliseconds (0: closed loop, as fast as possible).
    #[arg(long, default_value_t = 0)]
    interval_ms: u64,
    /// The server's `--queue` (lines per client). Must hold two rounds of a room's messages.
    #[arg(long, default_value_t = 256)]
    queue: usize,
    /// Passed by `cargo bench`; without it this is the quick run of `cargo test`.
    #[arg(long)]
    bench: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let load = if args.bench {
        Load {
            clients: args.clients,
            rooms: args.rooms,
            messages: args.messages,
            interval: Duration::from_millis(args.interval_ms),
            wave: 50,
        }
    } else {
        Load {
            clients: 40,
            rooms: 4,
            messages: 3,
            interval: Duration::ZERO,
            wave: 20,
        }
    };
    common::ensure_open_files(2 * load.clients as u64 + 256);
    let max_clients = load.clients.to_string();
    let queue = args.queue.to_string();
    let server = Server::start_with(
        common::SERVER,
        &["--max-clients", &max_clients, "--queue", &queue],
        "warn",
    );

    let mut report = tokio::time::timeout(Duration::from_secs(600), load.run(server.tcp))
        .await
        .expect("the benchmark finished within 10 minutes");
    let room = load.clients.div_ceil(load.rooms);
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "chat-server ({profile}): {} clients in {} rooms of {room}, {} messages each, interval {:?}, --queue {}",
        load.clients, load.rooms, load.messages, load.interval, args.queue
    );
    println!(
        "  delivered {} messages in {:.2?} = {:.0} messages/s",
        report.delivered,
        report.elapsed,
        report.per_second()
    );
    let (p50, p99) = (report.percentile(0.50), report.percentile(0.99));
    println!("  latency from send to receive: p50 {p50:.2?}, p99 {p99:.2?}");
    match server.peak_rss_kib() {
        Some(kib) => println!("  server peak RSS: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("  server peak RSS: unknown (needs /proc)"),
    }
}

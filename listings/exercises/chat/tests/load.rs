//! 1,000 clients on loopback, in 10 rooms of 100, each sending 2 messages: every client must
//! receive every message of every other member of its room exactly once, in order.
//! The server runs with its default limits; see `common/load.rs` for why its 1 MiB send queues
//! are plenty for this closed-loop load (and 2 messages fit in the default flood burst of 10).
//!
//! Two messages are enough for what is checked: each sender's messages arrive in order, and
//! the closed loop reaches its worst case (two rounds waiting in a queue) from the second
//! round on. Every further round adds 99,000 deliveries, about a second of CPU for the debug
//! builds of the server and of this test; `cargo bench -p chat` runs the large loads.

mod common;

use std::time::Duration;

use common::Server;
use common::load::Load;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_lose_no_message() {
    let load = Load {
        clients: 1000,
        rooms: 10,
        messages: 2,
        interval: Duration::ZERO,
        wave: 100,
    };
    // 1,000 sockets here and 1,000 in the server (which inherits our limit), plus some spare.
    common::ensure_open_files(2 * load.clients as u64 + 256);
    let server = Server::start(&[]);

    // The whole run must end in bounded time even on a busy 2-core machine.
    let report = tokio::time::timeout(Duration::from_secs(120), load.run(server.tcp))
        .await
        .expect("the load test finished within 120 s");

    // Each of the 1,000 clients hears 2 messages from each of the 99 others in its room.
    assert_eq!(report.delivered, 1000 * 99 * 2);
    eprintln!(
        "{} messages delivered in {:?} ({:.0}/s, debug build)",
        report.delivered,
        report.elapsed,
        report.per_second()
    );
}

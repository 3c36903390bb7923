//! 2,000 clients connect at the same moment, with the server's default settings, and keep reading:
//! none may be disconnected, and all of them hear a message sent once everybody is in.
//! (With a 256-line queue and a notice for every arrival, a few hundred used to be cut.)

mod common;

use std::time::Duration;

use common::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_two_thousand_joins_disconnects_no_one() {
    const CLIENTS: usize = 2000;
    // 2,000 sockets here and 2,000 in the server (which inherits our limit), plus some spare.
    common::ensure_open_files(2 * CLIENTS as u64 + 256);
    let server = Server::start(&[]);
    let report = tokio::time::timeout(
        Duration::from_secs(180),
        common::load::burst(server.tcp, CLIENTS),
    )
    .await
    .expect("the burst finished within 180 s");
    eprintln!("{report:?}");
    assert_eq!(report.disconnected, 0, "{report:?}");
    assert_eq!(report.heard_after, CLIENTS, "{report:?}");
}

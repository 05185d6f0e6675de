//! Stream ids at their end: a peer that has used the last stream id can
//! make no valid request any more, and the connection is closed rather than
//! kept open refusing everything.

use super::wire_support::*;
use crate::common::{request_frame, test_services};
use nri::ttrpc::{Code, ConnectionOptions, Framing};

#[test]
fn a_request_after_the_peers_last_stream_id_closes_the_connection() {
    for framing in [Framing::Raw, Framing::Mux] {
        let options = ConnectionOptions {
            name: "wI".into(),
            ..Default::default()
        };
        let mut s = serve(framing, options, test_services());
        s.peer
            .send_message(&request_frame(u32::MAX, "Echo", b"last"));
        let (id, r) = s.peer.expect_reply("the reply to the last id");
        assert_eq!(
            (id, r.code, r.payload.as_slice()),
            (u32::MAX, Code::Ok, &b"last"[..])
        );
        // What Go's client sends next: its counter wrapped to 1.
        s.peer.send_message(&request_frame(1, "Echo", b"wrapped"));
        let reason = s.probe.wait(STEP).expect("the connection closes");
        assert!(
            reason.contains("the peer sent a request (stream 1)")
                && reason.contains("after using the last stream id (4294967295)"),
            "{framing:?}: {reason}"
        );
        assert!(
            s.peer.wait_eof(STEP),
            "{framing:?}: the peer sees the close"
        );
        assert_eq!(threads_settle("wI-", 0, STEP), 0, "threads left behind");
        drop(s.conn);
        assert_eq!(fds_settle(&s.socket, 0, STEP), 0, "descriptors left open");
    }
}

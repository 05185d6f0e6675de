//! Received messages waiting to be taken are bounded in bytes of memory,
//! not in counts: a request that would take the held bytes over
//! `max_pending_bytes` is refused with RESOURCE_EXHAUSTED naming the bound.

use std::time::Duration;

use super::wire_support::*;
use crate::common::{mux_frame, request_frame, test_services};
use nri::ttrpc::{Code, ConnectionOptions, Framing};

#[test]
fn requests_waiting_for_a_worker_are_bounded_in_bytes() {
    let options = ConnectionOptions {
        name: "wP".into(),
        // The least there is: one message of the largest size.
        max_pending_bytes: 0,
        ..Default::default()
    };
    let mut s = serve(Framing::Mux, options, test_services());
    // Two requests of 3 MiB, one on each logical connection, all but their
    // last byte; then both last bytes in one write, so that one read
    // completes both: 6 MiB to queue at once, over the 4 MiB + 64 KiB
    // budget.
    let a = request_frame(1, "Echo", &vec![1u8; 3 << 20]);
    let b = request_frame(1, "Echo", &vec![2u8; 3 << 20]);
    let (a_head, a_last) = a.split_at(a.len() - 1);
    let (b_head, b_last) = b.split_at(b.len() - 1);
    for (conn, part) in [(1, a_head), (2, b_head)] {
        for chunk in part.chunks(1 << 20) {
            s.peer.send_bytes(&mux_frame(conn, chunk));
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut last = mux_frame(1, a_last);
    last.extend(mux_frame(2, b_last));
    s.peer.send_bytes(&last);

    let mut replies = Vec::new();
    for _ in 0..2 {
        let m = s.peer.expect_msg("a reply");
        replies.push((m.conn, crate::common::decode_reply(&m.data)));
    }
    replies.sort_by_key(|(conn, _)| *conn);
    let (_, a_reply) = &replies[0];
    assert_eq!(a_reply.code, Code::Ok, "{}", a_reply.message);
    assert_eq!(a_reply.payload.len(), 3 << 20);
    let (b_conn, b_reply) = &replies[1];
    assert_eq!(*b_conn, 2);
    assert_eq!(b_reply.code, Code::ResourceExhausted, "{}", b_reply.message);
    assert!(
        b_reply
            .message
            .contains("does not fit in the 4259840-byte budget")
            && b_reply.message.contains("(max_pending_bytes;"),
        "{}",
        b_reply.message
    );
    // Taken requests give their bytes back: the same again is served.
    s.peer.send_bytes(&mux_frame(
        1,
        &request_frame(3, "Echo", &vec![3u8; 3 << 20]),
    ));
    let (id, r) = s.peer.expect_reply("a later 3 MiB request");
    assert_eq!((id, r.code, r.payload.len()), (3, Code::Ok, 3 << 20));
    assert!(!s.conn.is_closed());
    s.conn.close();
}

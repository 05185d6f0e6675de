//! Bad bytes from a peer: a raw peer writes malformed, oversized, truncated
//! or hostile input to our serving Connection (plain and multiplexed), and
//! each test asserts the specific outcome and that the connection neither
//! panics nor hangs. The sans-IO decoders are fed random garbage in random
//! chunk sizes, with a per-thread allocation counter proving that declared
//! lengths never drive allocation beyond the limits.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nri::mux::codec::{MuxDecoder, MAX_FRAME_LEN};
use nri::ttrpc::codec::{
    Decoded, FrameDecoder, FrameHeader, HEADER_LEN, MAX_MESSAGE_LEN, TYPE_DATA, TYPE_REQUEST,
    TYPE_RESPONSE,
};
use nri::ttrpc::{Code, ConnectionOptions, Framing};
use nri::Error;

const CALL: Option<Duration> = Some(Duration::from_secs(10));
const FRAMINGS: [Framing; 2] = [Framing::Raw, Framing::Mux];

// ---------------------------------------------------------------------------
// Per-thread allocation counter
// ---------------------------------------------------------------------------

struct CountingAlloc;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn note(bytes: usize) {
    let _ = ALLOCATED.try_with(|c| c.set(c.get().saturating_add(bytes)));
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Runs `f` and returns how many bytes this thread allocated meanwhile.
fn allocated_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED.with(|c| c.get());
    let out = f();
    let after = ALLOCATED.with(|c| c.get());
    (out, after - before)
}

// ---------------------------------------------------------------------------
// Panic recorder for connection threads
// ---------------------------------------------------------------------------

static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records panics on threads whose name starts with "fuzz" (our Connection
/// names its threads `<options.name>-<n>`), keeping the default hook.
fn record_fuzz_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = thread::current().name().unwrap_or("").to_string();
            if name.starts_with("fuzz") {
                PANICS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("{name}: {info}"));
            }
            default(info);
        }));
    });
}

fn fuzz_panics() -> Vec<String> {
    PANICS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Asserts the connection closed by itself within the bound, ran its
/// on-close callback exactly once, and returns the reason.
fn assert_closed_once(conn: &nri::ttrpc::Connection, probe: &CloseProbe, what: &str) -> String {
    let reason = probe
        .wait(STEP)
        .unwrap_or_else(|| panic!("{what}: the connection did not close within {STEP:?}"));
    assert!(conn.wait_timeout(STEP), "{what}: workers did not finish");
    assert!(conn.is_closed(), "{what}");
    assert_eq!(
        conn.close_reason().as_deref(),
        Some(reason.as_str()),
        "{what}"
    );
    thread::sleep(Duration::from_millis(20));
    assert_eq!(probe.count(), 1, "{what}: on-close must run exactly once");
    reason
}

fn assert_clean_eof(conn: &nri::ttrpc::Connection, probe: &CloseProbe, what: &str) {
    let reason = assert_closed_once(conn, probe, what);
    assert!(reason.contains("peer closed"), "{what}: reason {reason:?}");
}

fn expect_code(peer: &mut RawPeer, id: u32, code: Code, what: &str) -> String {
    let (sid, r) = peer.expect_reply(what);
    assert_eq!(sid, id, "{what}: reply on the wrong stream");
    assert_eq!(r.code, code, "{what}: message {:?}", r.message);
    if code != Code::Ok {
        assert!(
            r.payload.is_empty(),
            "{what}: error replies carry no payload"
        );
    }
    r.message
}

fn expect_echo(peer: &mut RawPeer, id: u32, body: &[u8], what: &str) {
    let (sid, r) = peer.expect_reply(what);
    assert_eq!((sid, r.code), (id, Code::Ok), "{what}: {}", r.message);
    assert_eq!(r.payload, body, "{what}");
}

#[path = "bad_input/decoders.rs"]
mod decoders;
#[path = "bad_input/eof_and_lengths.rs"]
mod eof_and_lengths;
#[path = "bad_input/headers_and_replies.rs"]
mod headers_and_replies;
#[path = "bad_input/random_traffic.rs"]
mod random_traffic;

//! Requests that decode to far more memory than they take on the wire:
//! the budget of decoded requests refuses them before they are decoded
//! (the handler never sees them; what a decoded form holds against its
//! bound is measured in `tests/decode_memory.rs`), while ordinary requests
//! go on being served.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nri::api::{Container, CreateContainerRequest, CreateContainerResponse};
use nri::ttrpc::{Code, ConnectionBuilder, ConnectionOptions, Framing, Services};
use protobuf::{Message, MessageField};

const SVC: &str = "adversarial.Inbound";

/// A CreateContainerRequest of about 4 MB holding 2 million empty mounts.
fn empty_mounts_request() -> Vec<u8> {
    let mounts = 2_000_000usize;
    let mut bytes = Vec::with_capacity(2 * mounts + 16);
    bytes.push(0x12); // container
    let mut n = (2 * mounts) as u64;
    while n >= 0x80 {
        bytes.push(n as u8 | 0x80);
        n >>= 7;
    }
    bytes.push(n as u8);
    for _ in 0..mounts {
        bytes.extend_from_slice(&[0x4a, 0x00]); // an empty mount
    }
    bytes
}

#[test]
fn four_amplifying_requests_in_flight_are_refused_before_decoding() {
    let decoded = Arc::new(AtomicUsize::new(0));
    let mut services = Services::new();
    let seen = decoded.clone();
    services.add_unary(SVC, "Create", move |_ctx, req: CreateContainerRequest| {
        seen.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        drop(req);
        Ok(CreateContainerResponse::new())
    });
    let (a, b) = UnixStream::pair().expect("socketpair");
    let _server = ConnectionBuilder::new(a, Framing::Mux)
        .options(ConnectionOptions {
            name: "adv-server".into(),
            workers: 4,
            ..Default::default()
        })
        .serve(1, Arc::new(services))
        .start()
        .expect("server");
    let client_conn = ConnectionBuilder::new(b, Framing::Mux)
        .open(1)
        .start()
        .expect("client");
    let client = client_conn.client(1).expect("client");
    let bomb = empty_mounts_request();
    let started = Instant::now();
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (c, bomb) = (client.clone(), bomb.clone());
            std::thread::spawn(move || {
                c.call_raw(
                    SVC,
                    "Create",
                    bomb,
                    Some(Duration::from_secs(10)),
                    Vec::new(),
                )
            })
        })
        .collect();
    for h in callers {
        match h.join().expect("caller") {
            Err(nri::Error::Status { code, message, .. }) => {
                assert_eq!(code, Code::ResourceExhausted, "{message}");
                assert!(message.contains("budget for decoded requests"), "{message}");
            }
            other => panic!("expected RESOURCE_EXHAUSTED, got {other:?}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(decoded.load(Ordering::SeqCst), 0, "nothing was decoded");
    // An ordinary request is still served.
    let ok = CreateContainerRequest {
        container: MessageField::some(Container {
            id: "c1".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    client
        .call_raw(
            SVC,
            "Create",
            ok.write_to_bytes().expect("encodes"),
            Some(Duration::from_secs(10)),
            Vec::new(),
        )
        .expect("an ordinary request is served");
    assert_eq!(decoded.load(Ordering::SeqCst), 1);
}

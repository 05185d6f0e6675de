//! `ReusedMessage::decode` (the decoding of the stub's requests into a
//! message kept from the previous request) against a strict fresh decode
//! of the same bytes, for every message of the NRI API: the fixtures,
//! randomized messages, merged encodings, unpacked repeated scalars,
//! unknown fields, and truncated or corrupted bytes. Both must give the
//! same message (`special_fields` included), or both fail.

use nri::api::fixtures;
use nri::api::*;

mod common;

use common::random_message::random;
use common::strict_decode::fresh;
use common::XorShift as Rng;

/// Counts of what a run compared.
#[derive(Default, Debug)]
struct Counts {
    /// Byte strings decoded both ways.
    cases: u64,
    /// Of which the fresh decode refused.
    errors: u64,
    /// Of which the fresh decode kept unknown fields.
    unknown: u64,
}

/// Decodes `bytes` into `kept` (which holds whatever it held) and freshly,
/// and checks that both agree.
fn check<M: Reusable + std::fmt::Debug>(
    kept: &mut ReusedMessage<M>,
    bytes: &[u8],
    counts: &mut Counts,
    what: &str,
) {
    counts.cases += 1;
    let want = fresh::<M>(bytes);
    let got = kept.decode(bytes);
    match (&want, got) {
        (Ok(w), Ok(g)) => {
            assert_eq!(g, w, "{} {what}: bytes {bytes:02x?}", M::NAME);
            assert_eq!(
                g.special_fields().unknown_fields(),
                w.special_fields().unknown_fields(),
                "{} {what}",
                M::NAME
            );
            if w.special_fields().unknown_fields().iter().next().is_some() {
                counts.unknown += 1;
            }
        }
        (Err(_), Err(_)) => counts.errors += 1,
        (w, g) => panic!(
            "{} {what}: fresh decode {:?}, reused decode {:?}; bytes {bytes:02x?}",
            M::NAME,
            w.as_ref().map(|_| "ok").map_err(|e| e.to_string()),
            g.map(|_| "ok").map_err(|e| e.to_string())
        ),
    }
}

/// Random messages of type `M`, each decoded into a new kept message and
/// into one that held the previous (different) message; the merge of two
/// encodings; and corrupted forms of the bytes.
fn differential<M: Reusable + protobuf::MessageFull + std::fmt::Debug>(
    seed: u64,
    rounds: u64,
) -> Counts {
    let mut rng = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut counts = Counts::default();
    let mut kept = ReusedMessage::<M>::new();
    let mut previous: Vec<u8> = Vec::new();
    for round in 0..rounds {
        let m: M = random(&mut rng);
        let bytes = m.write_to_bytes().expect("encodes");
        check(&mut ReusedMessage::<M>::new(), &bytes, &mut counts, "fresh");
        check(&mut kept, &bytes, &mut counts, "reused");
        // Two encodings one after the other: the protobuf merge.
        let mut merged = previous.clone();
        merged.extend_from_slice(&bytes);
        check(&mut kept, &merged, &mut counts, "merged");
        // An unknown field, at the start or the end.
        let unknown = [0xf8, 0xff, 0x7f, 0x01]; // field 2097151, varint 1
        let mut with_unknown = bytes.clone();
        if round % 2 == 0 {
            with_unknown.extend_from_slice(&unknown);
        } else {
            with_unknown.splice(0..0, unknown);
        }
        check(&mut kept, &with_unknown, &mut counts, "unknown field");
        // Decoding the plain bytes again after a fallback.
        check(&mut kept, &bytes, &mut counts, "after unknown");
        // Truncations and corruptions.
        if !bytes.is_empty() {
            for _ in 0..4 {
                let cut = rng.below(bytes.len() as u64) as usize;
                check(&mut kept, &bytes[..cut], &mut counts, "truncated");
                let mut bad = bytes.clone();
                let at = rng.below(bad.len() as u64) as usize;
                bad[at] = match rng.below(4) {
                    0 => bad[at] ^ (1 << rng.below(8)),
                    1 => 0xff,
                    2 => 0x00,
                    _ => rng.next() as u8,
                };
                check(&mut kept, &bad, &mut counts, "corrupted");
            }
        }
        previous = bytes;
    }
    counts
}

macro_rules! every_message {
    ($($m:ident)*) => {
        #[test]
        fn random_messages_of_every_type_decode_as_fresh_ones() {
            let mut total = Counts::default();
            let mut types = 0;
            $(
                let c = differential::<$m>(stringify!($m).len() as u64 * 7919 + 1, 40);
                total.cases += c.cases;
                total.errors += c.errors;
                total.unknown += c.unknown;
                types += 1;
            )*
            eprintln!("{types} message types: {total:?}");
            // The corruptions must reach both outcomes, and unknown fields
            // must be kept through the fallback.
            assert!(total.errors > 1000, "{total:?}");
            assert!(total.unknown > 1000, "{total:?}");
            assert!(total.cases > total.errors * 2, "{total:?}");
        }
    };
}

every_message!(
    RegisterPluginRequest UpdateContainersRequest UpdateContainersResponse LogRequest
    ConfigureRequest ConfigureResponse SynchronizeRequest SynchronizeResponse
    RunPodSandboxRequest RunPodSandboxResponse UpdatePodSandboxRequest UpdatePodSandboxResponse
    PostUpdatePodSandboxRequest PostUpdatePodSandboxResponse StopPodSandboxRequest
    StopPodSandboxResponse RemovePodSandboxRequest RemovePodSandboxResponse
    CreateContainerRequest CreateContainerResponse PostCreateContainerRequest
    PostCreateContainerResponse StartContainerRequest StartContainerResponse
    PostStartContainerRequest PostStartContainerResponse UpdateContainerRequest
    UpdateContainerResponse PostUpdateContainerRequest PostUpdateContainerResponse
    StopContainerRequest StopContainerResponse RemoveContainerRequest RemoveContainerResponse
    StateChangeEvent ValidateContainerAdjustmentRequest PluginInstance
    ValidateContainerAdjustmentResponse Empty PodSandbox LinuxPodSandbox Container Image Mount
    Hooks Hook LinuxContainer LinuxNamespace LinuxDevice LinuxDeviceCgroup CDIDevice User
    LinuxResources LinuxMemory LinuxCPU HugepageLimit SecurityProfile POSIXRlimit LinuxPids
    LinuxIOPriority LinuxNetDevice LinuxScheduler ContainerAdjustment LinuxContainerAdjustment
    LinuxSeccomp LinuxSyscall LinuxSeccompArg LinuxMemoryPolicy ContainerUpdate
    LinuxContainerUpdate ContainerEviction LinuxRdt KeyValue OptionalString
    OptionalRepeatedString OptionalInt OptionalInt32 OptionalUInt32 OptionalInt64
    OptionalUInt64 OptionalBool OptionalFileMode CompoundFieldOwners FieldOwners OwningPlugins
);

#[test]
fn the_fixtures_decode_into_each_other_as_fresh_ones() {
    let pods: Vec<PodSandbox> = vec![
        fixtures::pod("p0").build(),
        fixtures::pod("p1").host_network().build(),
        PodSandbox::new(),
    ];
    let mut requests = Vec::new();
    for pod in &pods {
        let ctrs = [
            fixtures::container(pod, "c0").build(),
            fixtures::container(pod, "c1")
                .memory_limit(1 << 30)
                .cpu_shares(512)
                .cpu_quota(50_000, 100_000)
                .cpuset("0-3", "0")
                .build(),
            Container::new(),
        ];
        for c in ctrs {
            requests.push(CreateContainerRequest {
                pod: MessageField::some(pod.clone()),
                container: MessageField::some(c),
                ..Default::default()
            });
        }
    }
    requests.push(CreateContainerRequest::new());
    let mut counts = Counts::default();
    let mut kept = ReusedMessage::<CreateContainerRequest>::new();
    // Every request after every other one.
    for a in &requests {
        for b in &requests {
            check(&mut kept, &a.write_to_bytes().unwrap(), &mut counts, "a");
            check(&mut kept, &b.write_to_bytes().unwrap(), &mut counts, "b");
            assert_eq!(kept.message(), b);
        }
    }
    assert_eq!(counts.cases, 2 * (requests.len() * requests.len()) as u64);
    assert_eq!(counts.errors, 0);
}

#[test]
fn unpacked_repeated_scalars_and_unknown_enum_numbers_decode_as_fresh_ones() {
    let mut counts = Counts::default();
    let mut kept = ReusedMessage::<User>::new();
    // User: additional_gids (3) unpacked, then packed, then unpacked.
    let bytes = [
        0x18, 0x05, 0x1a, 0x02, 0x07, 0x08, 0x18, 0x80, 0x01, 0x08, 0x01,
    ];
    check(&mut kept, &bytes, &mut counts, "gids");
    assert_eq!(kept.message().additional_gids, [5, 7, 8, 128]);
    // A gid over 32 bits.
    check(
        &mut kept,
        &[0x18, 0xff, 0xff, 0xff, 0xff, 0x1f],
        &mut counts,
        "wide",
    );
    // LinuxMemoryPolicy: flags (3) unpacked, including an unknown number,
    // and a negative mode (1).
    let mut kept = ReusedMessage::<LinuxMemoryPolicy>::new();
    let bytes = [
        0x18, 0x01, 0x18, 0x63, 0x1a, 0x01, 0x02, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0x01,
    ];
    check(&mut kept, &bytes, &mut counts, "flags");
    assert_eq!(kept.message().flags.len(), 3);
    // An int32 enum value past 32 bits.
    check(
        &mut kept,
        &[0x08, 0xff, 0xff, 0xff, 0xff, 0x7f],
        &mut counts,
        "wide enum",
    );
    // A field of a known number with another wire type.
    check(&mut kept, &[0x0d, 1, 2, 3, 4], &mut counts, "wire type");
    // Map entries with a missing key, a missing value, an unknown field.
    let mut kept = ReusedMessage::<Container>::new();
    for bytes in [
        &[0x2a, 0x03, 0x12, 0x01, b'v'][..],
        &[0x2a, 0x03, 0x0a, 0x01, b'k'],
        &[0x2a, 0x05, 0x0a, 0x01, b'k', 0x18, 0x01],
        &[0x2a, 0x06, 0x0a, 0x01, b'k', 0x0a, 0x01, b'j'],
        &[0x2a, 0x00, 0x2a, 0x00],
    ] {
        check(&mut kept, bytes, &mut counts, "map entry");
    }
    // The two values past 32 bits are refused by both decoders; the field
    // with another wire type is kept as an unknown field.
    assert_eq!(counts.errors, 2, "{counts:?}");
    assert_eq!(counts.unknown, 1, "{counts:?}");
}

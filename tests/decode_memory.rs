//! The memory a decoded message holds, measured with a counting allocator,
//! against the bound `nri::ttrpc::decoded_size_bound` computes from the
//! wire bytes (the bound the budget of decoded requests charges), and the
//! allocations one CreateContainerRequest decode takes, field by field.
//!
//! The allocator counts only the allocations of the thread that turned
//! counting on, in glibc's chunk sizes (8 bytes of header, 16-byte steps,
//! 32 bytes at least), so the tests of this file may run in parallel.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use nri::api::Reusable;
use nri::api::{
    optional, Container, CreateContainerRequest, LinuxCPU, LinuxContainer, LinuxMemory,
    LinuxPodSandbox, LinuxResources, Mount, PodSandbox, ReusedMessage, SynchronizeRequest,
    UpdateContainersRequest,
};
use nri::ttrpc::decoded_size_bound;
use protobuf::{Message, MessageField, MessageFull};

mod common;

use common::random_message::random;
use common::XorShift as Rng;

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn chunk(size: usize) -> i64 {
    (((size + 8 + 15) & !15).max(32)) as i64
}

fn note(delta: i64, alloc: bool) {
    // `try_with`: the thread-locals may be gone while a thread exits.
    let _ = ON.try_with(|on| {
        if on.get() {
            LIVE.with(|l| {
                let v = l.get() + delta;
                l.set(v);
                PEAK.with(|p| p.set(p.get().max(v)));
            });
            if alloc {
                ALLOCS.with(|a| a.set(a.get() + 1));
            }
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(chunk(layout.size()), true);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-chunk(layout.size()), false);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Both blocks exist while the data moves.
        note(chunk(new_size), true);
        note(-chunk(layout.size()), false);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What running `f` allocated on this thread: heap held by its result,
/// peak heap while it ran, and the number of allocations.
struct Measured<T> {
    value: T,
    held: i64,
    peak: i64,
    allocs: u64,
}

fn measure<T>(f: impl FnOnce() -> T) -> Measured<T> {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    ALLOCS.with(|a| a.set(0));
    ON.with(|on| on.set(true));
    let value = f();
    ON.with(|on| on.set(false));
    Measured {
        value,
        held: LIVE.with(Cell::get),
        peak: PEAK.with(Cell::get),
        allocs: ALLOCS.with(Cell::get),
    }
}

/// The benchmark's pod: 10 labels, 10 annotations, Linux cgroup paths.
fn pod() -> PodSandbox {
    let uid = format!("{:032x}", 7_000_001);
    let mut p = PodSandbox {
        id: format!("{:064x}", 1_000_001),
        name: "bench-pod-1".into(),
        uid: uid.clone(),
        namespace: "default".into(),
        runtime_handler: "runc".into(),
        ..Default::default()
    };
    p.linux = MessageField::some(LinuxPodSandbox {
        cgroup_parent: format!("/kubepods/burstable/pod{uid}"),
        cgroups_path: format!("/kubepods/burstable/pod{uid}"),
        ..Default::default()
    });
    for k in 0..10 {
        p.labels.insert(
            format!("app.kubernetes.io/label-{k}"),
            format!("label-value-{k}"),
        );
        p.annotations.insert(
            format!("example.com/annotation-{k}"),
            format!("annotation-value-{k}-abcdefghijklmnopqrstuvwxyz"),
        );
    }
    p
}

/// The benchmark's container: 20 env, 6 mounts, Linux resources.
fn container(pod: &PodSandbox) -> Container {
    let mut c = Container {
        id: format!("{:064x}", 5_000_001),
        pod_sandbox_id: pod.id.clone(),
        name: "bench-ctr-1".into(),
        args: vec!["/bin/sh".into(), "-c".into(), "sleep infinity".into()],
        ..Default::default()
    };
    c.labels
        .insert("io.kubernetes.container.name".into(), c.name.clone());
    c.labels
        .insert("io.kubernetes.pod.namespace".into(), "default".into());
    c.annotations
        .insert("io.kubernetes.container.hash".into(), "8f9d3c2a".into());
    c.annotations
        .insert("io.kubernetes.container.restartCount".into(), "0".into());
    let cpu = LinuxCPU {
        shares: optional(1024),
        quota: optional(50_000),
        period: optional(100_000),
        cpus: "0-1".into(),
        mems: "0".into(),
        ..Default::default()
    };
    let resources = LinuxResources {
        memory: MessageField::some(LinuxMemory {
            limit: optional(268_435_456),
            ..Default::default()
        }),
        cpu: MessageField::some(cpu),
        ..Default::default()
    };
    c.linux = MessageField::some(LinuxContainer {
        resources: MessageField::some(resources),
        cgroups_path: format!("/kubepods/burstable/pod{}/{}", pod.uid, c.id),
        ..Default::default()
    });
    for k in 0..20 {
        c.env
            .push(format!("ENV_VAR_{k}=value-{k}-abcdefghijklmnop"));
    }
    for k in 0..6 {
        c.mounts.push(Mount {
            destination: format!("/mnt/vol-{k}"),
            type_: "bind".into(),
            source: format!("/var/lib/kubelet/pods/{}/volumes/vol-{k}", pod.uid),
            options: vec!["rbind".into(), "rprivate".into(), "rw".into()],
            ..Default::default()
        });
    }
    c
}

fn create_request() -> CreateContainerRequest {
    let p = pod();
    let c = container(&p);
    CreateContainerRequest {
        pod: MessageField::some(p),
        container: MessageField::some(c),
        ..Default::default()
    }
}

/// Decodes `bytes` as `M` while counting, and checks the measured heap
/// against the bound: never above it, and not far below it for ordinary
/// messages (`slack`: how many times the measured held bytes the bound
/// may be).
fn check<M: protobuf::MessageFull>(what: &str, bytes: &[u8], slack: f64) -> (i64, u64) {
    let bound = decoded_size_bound::<M>(bytes).expect("a bound") as i64;
    let m = measure(|| M::parse_from_bytes(bytes).expect("decodes"));
    let held = m.held + std::mem::size_of::<M>() as i64;
    assert!(
        held <= bound,
        "{what}: decoded form holds {held} bytes, over the bound {bound}"
    );
    assert!(
        m.peak <= bound,
        "{what}: decoding peaked at {} bytes, over the bound {bound}",
        m.peak
    );
    assert!(
        bound as f64 <= slack * held as f64,
        "{what}: bound {bound} is more than {slack} times the {held} bytes held"
    );
    drop(m.value);
    (held, m.allocs)
}

#[test]
fn the_bound_holds_for_the_benchmark_request() {
    let bytes = create_request().write_to_bytes().expect("encodes");
    check::<CreateContainerRequest>("CreateContainerRequest", &bytes, 3.0);
}

#[test]
fn the_bound_holds_for_empty_elements_maps_and_unknown_fields() {
    // 20,000 empty mounts: 2 bytes each on the wire.
    let c = Container {
        mounts: vec![Mount::default(); 20_000],
        ..Default::default()
    };
    check::<Container>("empty mounts", &c.write_to_bytes().expect("encodes"), 3.0);
    // Many small map entries and strings.
    let mut c = Container::default();
    for i in 0..5000 {
        c.annotations.insert(i.to_string(), String::new());
        c.env.push("x".into());
    }
    check::<Container>("small entries", &c.write_to_bytes().expect("encodes"), 4.0);
    // Unknown fields: a varint, a fixed64 and bytes, many times over.
    let mut bytes = Vec::new();
    for i in 0..3000u32 {
        bytes.extend_from_slice(&[0xf8, 0x07, (i % 100) as u8]); // field 127, varint
        bytes.extend_from_slice(&[0xf9, 0x07, 1, 2, 3, 4, 5, 6, 7, 8]); // fixed64
        bytes.extend_from_slice(&[0xfa, 0x07, 3, b'a', b'b', b'c']); // bytes
    }
    check::<Container>("unknown fields", &bytes, 40.0);
    // Deep nesting of a state with pods and containers.
    let p = pod();
    let req = SynchronizeRequest {
        pods: vec![p.clone(); 50],
        containers: vec![container(&p); 200],
        ..Default::default()
    };
    check::<SynchronizeRequest>("state", &req.write_to_bytes().expect("encodes"), 3.0);
    let upd = UpdateContainersRequest {
        update: vec![Default::default(); 10_000],
        ..Default::default()
    };
    check::<UpdateContainersRequest>("updates", &upd.write_to_bytes().expect("encodes"), 3.0);
}

/// 4 MiB of empty mounts: the bound sees what decoding would cost before
/// anything is decoded.
#[test]
fn four_mib_of_empty_mounts_is_bounded_at_hundreds_of_megabytes() {
    let mut bytes = Vec::with_capacity(4 << 20);
    // CreateContainerRequest.container (field 2) holding mounts (field 9).
    let mounts = 2_000_000;
    bytes.push(0x12);
    let inner = mounts * 2;
    let mut n = inner as u64;
    while n >= 0x80 {
        bytes.push(n as u8 | 0x80);
        n >>= 7;
    }
    bytes.push(n as u8);
    for _ in 0..mounts {
        bytes.extend_from_slice(&[0x4a, 0x00]);
    }
    let bound = decoded_size_bound::<CreateContainerRequest>(&bytes).expect("a bound");
    let per_mount = std::mem::size_of::<Mount>() as u64;
    assert!(
        bound >= mounts as u64 * per_mount,
        "bound {bound} below {mounts} mounts of {per_mount} bytes"
    );
}

/// Splits encoded message bytes by top-level field number, in order of
/// first appearance: the bytes of each field's occurrences (tag included),
/// which decode on their own as a message holding only that field.
fn by_field(mut bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for i in 0.. {
            let x = b[0];
            *b = &b[1..];
            v |= u64::from(x & 0x7f) << (7 * i);
            if x < 0x80 {
                break;
            }
        }
        v
    }
    let mut out: Vec<(u32, Vec<u8>)> = Vec::new();
    while !bytes.is_empty() {
        let start = bytes;
        let tag = varint(&mut bytes);
        match tag & 7 {
            0 => {
                varint(&mut bytes);
            }
            2 => {
                let n = varint(&mut bytes) as usize;
                bytes = &bytes[n..];
            }
            1 => bytes = &bytes[8..],
            5 => bytes = &bytes[4..],
            w => panic!("wire type {w} in the benchmark request"),
        }
        let used = &start[..start.len() - bytes.len()];
        let field = (tag >> 3) as u32;
        match out.iter_mut().find(|(f, _)| *f == field) {
            Some((_, b)) => b.extend_from_slice(used),
            None => out.push((field, used.to_vec())),
        }
    }
    out
}

/// Allocations of decoding each top-level field of `M` alone, with the
/// field's name.
fn allocs_per_field<M: protobuf::MessageFull>(bytes: &[u8]) -> Vec<(String, u64)> {
    let d = M::descriptor();
    by_field(bytes)
        .into_iter()
        .map(|(n, b)| {
            let name = d
                .field_by_number(n)
                .map(|f| f.name().to_string())
                .unwrap_or_else(|| format!("#{n}"));
            let m = measure(|| M::parse_from_bytes(&b).expect("one field decodes"));
            drop(m.value);
            (name, m.allocs)
        })
        .collect()
}

/// The allocations one CreateContainerRequest decode takes, field by
/// field (run with `--nocapture` to see the table). Every non-empty
/// string, every nested message (a `MessageField` box, the optional
/// scalars included) and every vector and map takes at least one
/// allocation with the generated types, and vectors and maps filled one
/// element at a time grow a few times; the table shows where the count
/// comes from, and the test checks that the fields add up to the whole.
#[test]
fn allocations_per_create_container_decode_by_field() {
    let req = create_request();
    let bytes = req.write_to_bytes().expect("encodes");
    let whole = measure(|| CreateContainerRequest::parse_from_bytes(&bytes).expect("decodes"));
    drop(whole.value);
    let pod = req.pod.write_to_bytes().expect("encodes");
    let ctr = req.container.write_to_bytes().expect("encodes");
    let pod_fields = allocs_per_field::<PodSandbox>(&pod);
    let ctr_fields = allocs_per_field::<Container>(&ctr);
    let mut lines = vec!["field | allocations".to_string()];
    for (what, fields) in [("pod", &pod_fields), ("container", &ctr_fields)] {
        lines.push(format!("{what} (its box) | 1"));
        for (name, n) in fields {
            lines.push(format!("{what}.{name} | {n}"));
        }
    }
    let sum: u64 = 2 + pod_fields
        .iter()
        .chain(&ctr_fields)
        .map(|(_, n)| n)
        .sum::<u64>();
    lines.push(format!("total | {} (sum of the rows {sum})", whole.allocs));
    eprintln!("{}", lines.join("\n"));
    assert_eq!(whole.allocs, sum, "the fields add up to the whole decode");
    // Strings alone: each non-empty one is its own allocation.
    let strings = count_strings(&req);
    assert!(
        whole.allocs >= strings,
        "{} allocations for {strings} strings",
        whole.allocs
    );
    assert!(whole.allocs <= 160, "{} allocations", whole.allocs);
}

/// Non-empty strings in the benchmark request (map keys and values,
/// repeated strings and singular strings, nested ones included).
fn count_strings(req: &CreateContainerRequest) -> u64 {
    let p = &req.pod;
    let c = &req.container;
    let nonempty = |s: &str| u64::from(!s.is_empty());
    let linux_p = p.linux.as_ref().map_or(0, |l| {
        nonempty(&l.cgroup_parent) + nonempty(&l.cgroups_path)
    });
    let pod = [&p.id, &p.name, &p.uid, &p.namespace, &p.runtime_handler]
        .iter()
        .map(|s| nonempty(s))
        .sum::<u64>()
        + 2 * (p.labels.len() + p.annotations.len()) as u64
        + linux_p;
    let mounts: u64 = c
        .mounts
        .iter()
        .map(|m| {
            nonempty(&m.destination)
                + nonempty(&m.type_)
                + nonempty(&m.source)
                + m.options.len() as u64
        })
        .sum();
    let linux_c = c.linux.as_ref().map_or(0, |l| {
        nonempty(&l.cgroups_path)
            + l.resources.as_ref().map_or(0, |r| {
                r.cpu
                    .as_ref()
                    .map_or(0, |cpu| nonempty(&cpu.cpus) + nonempty(&cpu.mems))
            })
    });
    let ctr = [&c.id, &c.pod_sandbox_id, &c.name]
        .iter()
        .map(|s| nonempty(s))
        .sum::<u64>()
        + 2 * (c.labels.len() + c.annotations.len()) as u64
        + (c.args.len() + c.env.len()) as u64
        + mounts
        + linux_c;
    pod + ctr
}

/// Decodes `bytes` into `kept` while counting; the allocations it took.
fn reused_allocs(kept: &mut ReusedMessage<CreateContainerRequest>, bytes: &[u8]) -> u64 {
    let m = measure(|| {
        kept.decode(bytes).expect("decodes");
    });
    m.allocs
}

/// The stub decodes each request into the message that held the previous
/// request of its type on the same thread (`ReusedMessage`). Once warm, a
/// request shaped like the one before it (the same benchmark request
/// again, or one alternating with another of other values and shape)
/// decodes with at most 40 allocations, against about 150 for a fresh
/// decode.
#[test]
fn a_reused_create_container_decode_allocates_at_most_40_times() {
    let a = create_request();
    let bytes_a = a.write_to_bytes().expect("encodes");
    let fresh = measure(|| CreateContainerRequest::parse_from_bytes(&bytes_a).expect("decodes"));
    drop(fresh.value);

    let mut kept = ReusedMessage::<CreateContainerRequest>::new();
    let first = reused_allocs(&mut kept, &bytes_a);
    for _ in 0..3 {
        reused_allocs(&mut kept, &bytes_a);
    }
    let same = reused_allocs(&mut kept, &bytes_a);
    assert_eq!(kept.message(), &a);

    // Another request: other ids and names, longer values, two more
    // labels, fewer env entries and mounts, no Linux resources.
    let mut b = create_request();
    let (pod, ctr) = (
        b.pod.mut_or_insert_default(),
        b.container.mut_or_insert_default(),
    );
    pod.id = format!("{:064x}", 2_000_002);
    pod.name = "another-pod-with-a-longer-name".into();
    pod.labels.insert("extra".into(), "label".into());
    pod.labels.insert("tier".into(), "backend-services".into());
    ctr.id = format!("{:064x}", 5_000_002);
    ctr.name = "another-container".into();
    ctr.env.truncate(7);
    ctr.mounts.truncate(2);
    ctr.linux.mut_or_insert_default().resources = MessageField::none();
    let bytes_b = b.write_to_bytes().expect("encodes");
    for _ in 0..3 {
        reused_allocs(&mut kept, &bytes_b);
        reused_allocs(&mut kept, &bytes_a);
    }
    let to_b = reused_allocs(&mut kept, &bytes_b);
    assert_eq!(kept.message(), &b);
    let to_a = reused_allocs(&mut kept, &bytes_a);
    assert_eq!(kept.message(), &a);
    eprintln!(
        "CreateContainerRequest decode allocations: fresh {}, first reused {first}, \
         same request again {same}, alternating: to the other {to_b}, back {to_a}",
        fresh.allocs
    );
    assert!(fresh.allocs > 100, "fresh decode: {}", fresh.allocs);
    for (what, n) in [("same", same), ("to b", to_b), ("to a", to_a)] {
        assert!(n <= 40, "{what}: {n} allocations");
    }
}

/// Decodes a long run of inputs into one kept message of type `M`, counting
/// the heap of this thread from before the message existed, and checks
/// after every decode that what the message holds is within its
/// `retained_bound`. The inputs: random messages of `M` (short and long
/// strings, maps, nested messages), now and then one with an unknown field
/// (which the in-place decoder hands to the protobuf crate, and which the
/// bound then counts by the cost model) or cut short (which fails), and
/// `extra`. Gives the largest bound seen.
fn retained_bound_holds<M: Reusable + MessageFull>(seed: u64, extra: &[Vec<u8>]) -> u64 {
    let mut rng = Rng::new(seed);
    let mut inputs: Vec<Vec<u8>> = extra.to_vec();
    for _ in 0..400 {
        let mut bytes = random::<M>(&mut rng).write_to_bytes().expect("encodes");
        if rng.chance(5) {
            bytes.extend_from_slice(&[0xf8, 0x7f, 0x07]); // field 2047, varint 7
        } else if rng.chance(5) && !bytes.is_empty() {
            bytes.truncate(rng.below(bytes.len() as u64) as usize);
        }
        inputs.push(bytes);
        if let Some(e) = extra.get(rng.below(extra.len() as u64 * 4) as usize) {
            inputs.push(e.clone());
        }
    }
    LIVE.with(|l| l.set(0));
    ON.with(|on| on.set(true));
    // As the stub does, a message whose decode failed is dropped and a new
    // one started; what the new one holds counts from then.
    let mut kept = ReusedMessage::<M>::new();
    let mut base = LIVE.with(Cell::get);
    let (mut worst, mut checked) = (0u64, 0usize);
    for (i, bytes) in inputs.iter().enumerate() {
        if kept.decode(bytes).is_err() {
            kept = ReusedMessage::<M>::new();
            base = LIVE.with(Cell::get);
            continue;
        }
        let held = LIVE.with(Cell::get) - base;
        let bound = kept.retained_bound();
        if held > 0 && (held as u64) > bound {
            ON.with(|on| on.set(false));
            panic!(
                "{}: after input {i} of {}, the kept message holds {held} bytes, over its \
                 retained bound of {bound}",
                M::NAME,
                inputs.len()
            );
        }
        checked += 1;
        worst = worst.max(bound);
    }
    drop(kept);
    ON.with(|on| on.set(false));
    assert!(
        checked >= 300,
        "{}: only {checked} decodes checked",
        M::NAME
    );
    worst
}

#[test]
fn a_kept_message_never_holds_more_than_its_retained_bound() {
    let bench = create_request().write_to_bytes().expect("encodes");
    let bounds = [
        retained_bound_holds::<CreateContainerRequest>(1, std::slice::from_ref(&bench)),
        retained_bound_holds::<Container>(2, &[]),
        retained_bound_holds::<PodSandbox>(3, &[]),
        retained_bound_holds::<UpdateContainersRequest>(4, &[]),
        retained_bound_holds::<LinuxResources>(5, &[]),
    ];
    // Never unbounded after a successful decode, and not absurdly loose:
    // a few megabytes at most for these inputs.
    for b in bounds {
        assert!(b < 64 << 20, "retained bound {b}");
    }
}

/// The benchmark request, decoded again and again into one kept message,
/// grows it only the first two times (the second moves the maps' strings
/// through the pool, whose vector is then allocated): the bound the stub
/// compares with its limit then stays where it is.
#[test]
fn the_retained_bound_stops_growing_for_requests_of_one_shape() {
    let bytes = create_request().write_to_bytes().expect("encodes");
    let mut kept = ReusedMessage::<CreateContainerRequest>::new();
    kept.decode(&bytes).expect("decodes");
    let first = kept.retained_bound();
    let held = measure(|| CreateContainerRequest::parse_from_bytes(&bytes).expect("decodes")).held;
    assert!(
        first as i64 >= held,
        "bound {first} under a fresh decode's {held}"
    );
    kept.decode(&bytes).expect("decodes");
    let second = kept.retained_bound();
    assert!(second - first < 4096, "{first} then {second}");
    for _ in 0..10 {
        kept.decode(&bytes).expect("decodes");
    }
    assert_eq!(kept.retained_bound(), second);
}

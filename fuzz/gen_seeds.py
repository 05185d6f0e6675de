#!/usr/bin/env python3
"""Writes the small seed corpus under fuzz/seeds/<target>/.

Run from anywhere: `python3 fuzz/gen_seeds.py`. The output is committed;
rerun only when the seed set changes. Uses a tiny protobuf writer so it
needs nothing beyond the standard library.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")

# --- protobuf -----------------------------------------------------------


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(num, n):
    return varint(num << 3) + varint(n)


def f_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(num << 3 | 2) + varint(len(b)) + b


def f_map(num, d):
    return b"".join(f_bytes(num, f_bytes(1, k) + f_bytes(2, v)) for k, v in d.items())


def optional_i64(v):
    return f_varint(1, v)


POD = (
    f_bytes(1, "pod-id-1")
    + f_bytes(2, "nginx")
    + f_bytes(3, "uid-1")
    + f_bytes(4, "default")
    + f_map(5, {"app": "web"})
    + f_map(6, {"io.kubernetes.cri/sandbox": "x"})
    + f_bytes(8, f_bytes(3, "/kubepods") + f_bytes(5, f_bytes(1, "network") + f_bytes(2, "/proc/1/ns/net")))
    + f_varint(9, 1234)
    + f_bytes(10, "10.0.0.2")
)

RESOURCES = (
    f_bytes(1, f_bytes(1, optional_i64(1 << 30)) + f_bytes(7, f_varint(1, 1)))
    + f_bytes(2, f_bytes(1, f_varint(1, 1024)) + f_bytes(6, "0-3") + f_bytes(7, "0"))
    + f_bytes(3, f_bytes(1, "2MB") + f_varint(2, 4))
    + f_map(6, {"memory.high": "max"})
    + f_bytes(8, f_varint(1, 100))
)

CONTAINER = (
    f_bytes(1, "ctr-1")
    + f_bytes(2, "pod-id-1")
    + f_bytes(3, "web")
    + f_varint(4, 1)
    + f_map(5, {"tier": "front"})
    + f_bytes(7, "/bin/sh")
    + f_bytes(8, "PATH=/usr/bin")
    + f_bytes(9, f_bytes(1, "/data") + f_bytes(2, "bind") + f_bytes(3, "/host") + f_bytes(4, "rbind"))
    + f_bytes(10, f_bytes(1, f_bytes(1, "/hook") + f_bytes(2, "arg") + f_bytes(4, f_varint(1, 5))))
    + f_bytes(11, f_bytes(1, f_bytes(1, "pid")) + f_bytes(2, f_bytes(1, "/dev/null") + f_bytes(2, "c") + f_varint(3, 1) + f_varint(4, 3)) + f_bytes(3, RESOURCES) + f_bytes(4, f_varint(1, (-500) & (2**64 - 1))))
    + f_varint(12, 42)
    + f_bytes(13, f_bytes(1, "RLIMIT_NOFILE") + f_varint(2, 1024) + f_varint(3, 512))
)

CONFIGURE = (
    f_bytes(1, "pod,container")
    + f_bytes(2, "containerd")
    + f_bytes(3, "2.0")
    + f_varint(4, 5_000_000_000)
    + f_varint(5, 2_000_000_000)
    + f_bytes(6, "v0.12.3")
)
# A container with the fields of NRI v0.10-v0.12: timestamps, exit status,
# CDI devices, user, image, and Linux I/O priority, seccomp, sysctl, net
# devices, scheduler and RDT.
CONTAINER_V012 = (
    CONTAINER
    + f_varint(14, 1_700_000_000_000_000_000)
    + f_varint(17, 137)
    + f_bytes(18, "OOMKilled")
    + f_bytes(20, f_bytes(1, "vendor.com/gpu=0"))
    + f_bytes(21, f_varint(1, 1000) + f_varint(2, 1000) + f_varint(3, 10))
    + f_bytes(22, f_bytes(1, "busybox:latest") + f_bytes(2, "sha256:00"))
    + f_bytes(11, f_bytes(6, f_varint(1, 2) + f_varint(2, 4))
              + f_bytes(7, f_varint(1, 2) + f_bytes(2, "profile.json"))
              + f_bytes(8, f_bytes(1, "SCMP_ACT_ALLOW") + f_bytes(7, f_bytes(1, "mount") + f_bytes(2, "SCMP_ACT_ERRNO")))
              + f_map(9, {"net.core.somaxconn": "1024"})
              + f_bytes(10, f_bytes(1, "eth1") + f_bytes(2, f_bytes(1, "net0")))
              + f_bytes(11, f_varint(1, 4) + f_varint(2, 5))
              + f_bytes(12, f_bytes(1, f_bytes(1, "gold"))))
)
ADJUST_V012 = (
    f_bytes(9, "/bin/app")
    + f_bytes(6, f_bytes(7, f_bytes(1, "network") + f_bytes(2, "/var/run/netns/x"))
              + f_map(8, {"kernel.msgmax": "65536"})
              + f_bytes(12, f_varint(1, 2) + f_bytes(2, "0") + f_varint(3, 0)))
)
OWNERS = f_bytes(1, f_bytes(1, "ctr-1") + f_bytes(2, f_bytes(1, f_varint(1, 8) + f_bytes(2, "10-a"))))
VALIDATE = (
    f_bytes(1, POD)
    + f_bytes(2, CONTAINER_V012)
    + f_bytes(3, ADJUST_V012)
    + f_bytes(5, OWNERS)
    + f_bytes(6, f_bytes(1, "a") + f_bytes(2, "10"))
)
UPDATE_POD = f_bytes(1, POD) + f_bytes(2, RESOURCES) + f_bytes(3, RESOURCES)
SYNCHRONIZE = f_bytes(1, POD) + f_bytes(2, CONTAINER) + f_varint(3, 1)
CREATE = f_bytes(1, POD) + f_bytes(2, CONTAINER)
UPDATE = f_bytes(1, POD) + f_bytes(2, CONTAINER) + f_bytes(3, RESOURCES)
STATE_CHANGE = f_varint(1, 6) + f_bytes(2, POD) + f_bytes(3, CONTAINER)
# A CreateContainerResponse: adjustment with an annotation, env, rlimit.
CREATE_RESPONSE = f_bytes(
    1, f_map(2, {"a": "b"}) + f_bytes(4, f_bytes(1, "K") + f_bytes(2, "V")) + f_bytes(7, f_bytes(1, "RLIMIT_CORE") + f_varint(2, 1))
) + f_bytes(3, f_bytes(1, "ctr-2") + f_bytes(2, "evicted"))

PLUGIN = "nri.pkg.api.v1alpha1.Plugin"


def request(method, payload, timeout_nano=0, service=PLUGIN, metadata=None):
    r = f_bytes(1, service) + f_bytes(2, method) + f_bytes(3, payload)
    if timeout_nano:
        r += f_varint(4, timeout_nano)
    for k, v in (metadata or {}).items():
        r += f_bytes(5, f_bytes(1, k) + f_bytes(2, v))
    return r


# --- framing ------------------------------------------------------------


def ttrpc(stream_id, data, mtype=1, flags=0, length=None):
    n = len(data) if length is None else length
    return struct.pack(">IIBB", n, stream_id, mtype, flags) + data


def mux(conn, payload, length=None):
    n = len(payload) if length is None else length
    return struct.pack(">II", conn, n) + payload


# --- seeds --------------------------------------------------------------


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    cfg = request("Configure", CONFIGURE)

    # ttrpc_frame: [chunking, small limit] + stream
    t = "ttrpc_frame"
    write(t, "one-request-whole", bytes([0, 64]) + ttrpc(1, cfg))
    write(t, "two-frames-bytewise", bytes([1, 4]) + ttrpc(1, b"abc") + ttrpc(3, b"", mtype=2))
    write(t, "oversized-then-next", bytes([7, 2]) + ttrpc(5, b"toolong") + ttrpc(7, b"ok"))
    write(t, "truncated-header", bytes([3, 255]) + ttrpc(1, b"abc")[:7])
    write(t, "declared-u32-max", bytes([13, 16]) + ttrpc(9, b"\0" * 32, length=0xFFFFFFFF))
    write(t, "data-and-flags", bytes([5, 200]) + ttrpc(2, b"xyz", mtype=3, flags=5) + ttrpc(11, b"", mtype=1, flags=4))

    # mux_frame: [chunking, small limit] + trunk
    t = "mux_frame"
    write(t, "two-connections", bytes([0, 100]) + mux(1, ttrpc(1, b"hi")) + mux(2, ttrpc(1, b"yo")))
    write(t, "bytewise-split-message", bytes([1, 255]) + mux(1, ttrpc(1, b"a" * 20)[:12]) + mux(1, ttrpc(1, b"a" * 20)[12:]))
    write(t, "empty-frame-then-data", bytes([4, 8]) + mux(1, b"") + mux(1, b"data"))
    write(t, "over-small-limit", bytes([3, 4]) + mux(1, b"12345") + mux(2, b"x"))
    write(t, "declared-u32-max", bytes([9, 0]) + mux(7, b"zz", length=0xFFFFFFFF))
    write(t, "truncated", bytes([2, 50]) + mux(1, b"abcdef")[:11])

    # server_path: [setup] + what the peer sends
    t = "server_path"
    sync = request("Synchronize", SYNCHRONIZE)
    shut = request("Shutdown", b"")
    write(t, "mux-configure", bytes([0]) + mux(1, ttrpc(1, cfg)))
    write(
        t,
        "mux-three-calls",
        bytes([4 | 8]) + mux(1, ttrpc(1, cfg)) + mux(1, ttrpc(3, sync)) + mux(1, ttrpc(5, shut)),
    )
    write(
        t,
        "mux-bad-requests",
        bytes([0])
        + mux(1, ttrpc(2, cfg))  # even stream id
        + mux(1, ttrpc(3, b"\xff\xff"))  # undecodable envelope
        + mux(1, ttrpc(5, request("Nope", b"")))  # unknown method
        + mux(1, ttrpc(7, request("Configure", b"\x0a\xff")))  # bad payload
        + mux(1, ttrpc(7, cfg))  # reused id
        + mux(1, ttrpc(9, b"", mtype=9)),  # unknown type
    )
    write(t, "mux-runtime-conn-and-response", bytes([4]) + mux(2, ttrpc(1, b"", mtype=2)) + mux(2, ttrpc(3, cfg)) + mux(5, b"junk"))
    write(t, "mux-split-over-frames", bytes([0]) + mux(1, ttrpc(1, cfg)[:5]) + mux(1, ttrpc(1, cfg)[5:]))
    write(t, "mux-frame-too-large", bytes([0]) + mux(1, b"", length=(4 << 20) + 11))
    write(t, "raw-configure-sync", bytes([1]) + ttrpc(1, cfg) + ttrpc(3, sync))
    write(
        t,
        "mux-guard-short-deadline",
        bytes([2]) + mux(1, ttrpc(1, request("Configure", CONFIGURE, timeout_nano=1, metadata={"k": "v"}))),
    )
    # The error reply quotes the method name, so it outgrows 4096 bytes and
    # must go out as two trunk frames (4096 + rest).
    write(t, "mux-long-method-reply-split", bytes([0]) + mux(1, ttrpc(1, request("M" * 4200, b""))))
    write(t, "raw-oversized-declared", bytes([1 | 4]) + ttrpc(1, b"", length=(4 << 20) + 1))

    # nri_requests: one encoded message each
    t = "nri_requests"
    write(t, "configure", CONFIGURE)
    write(t, "synchronize", SYNCHRONIZE)
    write(t, "create-container", CREATE)
    write(t, "update-container", UPDATE)
    write(t, "state-change", STATE_CHANGE)
    write(t, "create-response", CREATE_RESPONSE)
    write(t, "post-create-v012", f_bytes(1, POD) + f_bytes(2, CONTAINER_V012))
    write(t, "validate-adjustment", VALIDATE)
    write(t, "update-pod-sandbox", UPDATE_POD)
    write(t, "validate-response", f_varint(1, 1) + f_bytes(2, "no"))
    write(t, "ttrpc-request", cfg)
    write(t, "unknown-fields", f_varint(99, 7) + f_bytes(100, "x") + varint(98 << 3 | 5) + struct.pack("<I", 1))

    # reuse_decode: [type] [split] + a message decoded first + the message
    # decoded into what it left
    t = "reuse_decode"
    write(t, "create-after-create", bytes([0, 128]) + CREATE + CREATE)
    write(t, "create-fresh", bytes([0, 0]) + CREATE)
    write(t, "update-after-update", bytes([1, 128]) + UPDATE + UPDATE)
    write(t, "state-change", bytes([9, 0]) + STATE_CHANGE)
    write(t, "validate", bytes([8, 0]) + VALIDATE)
    write(t, "synchronize", bytes([11, 0]) + SYNCHRONIZE)
    write(t, "unknown-fields", bytes([13, 0]) + f_varint(99, 7) + f_bytes(100, "x"))

    # event_mask: [4 bytes of bits] + text (the whole input is also text)
    t = "event_mask"
    write(t, "names", struct.pack("<i", 0b1001) + b"RunPodSandbox,createcontainer")
    write(t, "groups", struct.pack("<i", 0x7FF) + b"pod, container")
    write(t, "all", b"all")
    write(t, "unknown-bits", struct.pack("<i", -1) + b"StopContainer,bogus")
    write(t, "empty-item", struct.pack("<i", 0x1000) + b"startcontainer,,stopcontainer")
    write(t, "whitespace", b" \tPostUpdateContainer , REMOVECONTAINER ")

    # plugin_name: the string
    t = "plugin_name"
    for name, s in [
        ("valid", "10-logger"),
        ("dashes", "99-a-b-c"),
        ("short-index", "1-logger"),
        ("no-dash", "logger"),
        ("empty-name", "00-"),
        ("bad-chars", "ab-my plugin"),
        ("unicode", "1\u0662-n\u00e4me"),
    ]:
        write(t, name, s.encode())


if __name__ == "__main__":
    main()

//! The little of rtnetlink the plugin needs, over `libc`: find a link by
//! name, bring it up or down, rename it, set its alias, and move it to
//! another network namespace; and network namespaces themselves, opened by
//! path, with a netlink socket inside each.
//!
//! What `github.com/vishvananda/netlink` and
//! `github.com/containernetworking/plugins/pkg/ns` do for the Go plugin,
//! reduced to these calls. A netlink socket works in the network namespace
//! it was created in, so the plugin creates one per namespace (on a
//! short-lived thread that enters the namespace) instead of switching its
//! own threads between namespaces. Every reply is awaited for at most
//! [`REPLY_TIMEOUT`].

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

/// The longest wait for the kernel's reply to one request.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// `IFF_UP`, the "administratively up" flag of a link.
pub const IFF_UP: u32 = 0x1;

const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const IFLA_IFNAME: u16 = 3;
const IFLA_IFALIAS: u16 = 20;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_EXT_MASK: u16 = 29;
const RTEXT_FILTER_VF: u32 = 1;
const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
/// Largest reply taken; link messages are a few kilobytes.
const RECV_BUFFER: usize = 64 * 1024;

/// `statfs` magic numbers of the filesystems a network namespace file lives
/// on: nsfs (`/proc/<pid>/ns/net`, bind mounts of it such as
/// `/var/run/netns/<name>`) and, on older kernels, procfs.
const NSFS_MAGIC: i64 = 0x6e73_6673;
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// An error of a netlink call: what was attempted and the kernel's answer.
#[derive(Debug)]
pub enum Error {
    /// No link of that name (ENODEV), as vishvananda/netlink words it.
    LinkNotFound,
    /// Any other failure.
    Os(io::Error),
    /// A reply the kernel should not send.
    Protocol(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::LinkNotFound => f.write_str("Link not found"),
            Error::Os(e) => write!(f, "{}", go_errno(e)),
            Error::Protocol(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Os(e)
    }
}

/// An I/O error as Go prints an errno: lowercase, without `(os error N)`.
pub fn go_errno(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text
        .find(" (os error")
        .map_or(text.as_str(), |i| &text[..i]);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A network namespace, held open by a file descriptor.
#[derive(Debug)]
pub struct NetNs {
    file: File,
}

impl NetNs {
    /// The namespace at `path` (`/var/run/netns/cni-…`, `/proc/<pid>/ns/net`),
    /// refusing a path that is not a namespace, as Go's `ns.GetNS` does.
    pub fn open(path: &Path) -> Result<NetNs, String> {
        let file = File::open(path).map_err(|e| {
            format!(
                "failed to open {:?}: {}",
                path.display().to_string(),
                go_errno(&e)
            )
        })?;
        // SAFETY: zeroed memory is a valid `statfs` (plain integers), which
        // fstatfs fills in; the descriptor is open for the call's duration.
        let magic = unsafe {
            let mut st: libc::statfs = std::mem::zeroed();
            if libc::fstatfs(file.as_raw_fd(), &mut st) != 0 {
                let e = io::Error::last_os_error();
                return Err(format!(
                    "failed to Statfs {:?}: {}",
                    path.display().to_string(),
                    go_errno(&e)
                ));
            }
            st.f_type as i64
        };
        if magic != NSFS_MAGIC && magic != PROC_SUPER_MAGIC {
            return Err(format!(
                "unknown FS magic on {:?}: {magic:x}",
                path.display().to_string()
            ));
        }
        Ok(NetNs { file })
    }

    /// The network namespace of the calling thread.
    pub fn current() -> Result<NetNs, String> {
        NetNs::open(Path::new("/proc/thread-self/ns/net"))
    }

    /// The namespace's descriptor, for [`Socket::set_ns`].
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// A netlink socket working in this namespace.
    pub fn socket(&self) -> Result<Socket, Error> {
        let ns = self.file.try_clone()?;
        // setns(2) changes the namespace of the calling thread only: a
        // thread of our own enters the namespace, creates the socket (which
        // stays in that namespace for its life) and ends.
        std::thread::Builder::new()
            .name("netns".into())
            .spawn(move || {
                // SAFETY: setns on a valid, open namespace descriptor; it
                // affects only this short-lived thread.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(Error::Os(io::Error::last_os_error()));
                }
                Socket::open()
            })?
            .join()
            .map_err(|_| Error::Protocol("the namespace thread panicked".into()))?
    }
}

/// What [`Socket::link_by_name`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its index in its namespace.
    pub index: i32,
    /// Its name.
    pub name: String,
    /// Its `IFF_*` flags.
    pub flags: u32,
    /// Its alias (`ip link set … alias …`), empty if none.
    pub alias: String,
}

impl Link {
    /// Whether it is administratively up.
    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }
}

/// A `NETLINK_ROUTE` socket, bound to the network namespace it was created
/// in.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Socket, Error> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(Error::Os(io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a freshly created descriptor owned by no one else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let timeout = libc::timeval {
            tv_sec: REPLY_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: SO_RCVTIMEO takes a `timeval` of the given size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(Error::Os(io::Error::last_os_error()));
        }
        Ok(Socket { fd, seq: 0 })
    }

    /// The link named `name`.
    pub fn link_by_name(&mut self, name: &str) -> Result<Link, Error> {
        let mut attrs = Vec::new();
        push_attr(&mut attrs, IFLA_EXT_MASK, &RTEXT_FILTER_VF.to_ne_bytes());
        push_attr(&mut attrs, IFLA_IFNAME, &c_string(name)?);
        let reply = self.request(RTM_GETLINK, 0, ifinfomsg(0, 0, 0), &attrs)?;
        match reply {
            Reply::Link(link) => Ok(link),
            Reply::Ack => Err(Error::Protocol(format!(
                "no link in the kernel's reply for {name:?}"
            ))),
        }
    }

    /// Brings link `index` up or down.
    pub fn set_up(&mut self, index: i32, up: bool) -> Result<(), Error> {
        let flags = if up { IFF_UP } else { 0 };
        self.change(RTM_NEWLINK, ifinfomsg(index, flags, IFF_UP), &[])
    }

    /// Renames link `index` (it must be down).
    pub fn set_name(&mut self, index: i32, name: &str) -> Result<(), Error> {
        let mut attrs = Vec::new();
        push_attr(&mut attrs, IFLA_IFNAME, &c_string(name)?);
        self.change(RTM_SETLINK, ifinfomsg(index, 0, 0), &attrs)
    }

    /// Sets the alias of link `index`.
    pub fn set_alias(&mut self, index: i32, alias: &str) -> Result<(), Error> {
        let mut attrs = Vec::new();
        push_attr(&mut attrs, IFLA_IFALIAS, alias.as_bytes());
        self.change(RTM_SETLINK, ifinfomsg(index, 0, 0), &attrs)
    }

    /// Moves link `index` into the network namespace `ns`.
    pub fn set_ns(&mut self, index: i32, ns: &NetNs) -> Result<(), Error> {
        let mut attrs = Vec::new();
        push_attr(&mut attrs, IFLA_NET_NS_FD, &(ns.fd() as u32).to_ne_bytes());
        self.change(RTM_SETLINK, ifinfomsg(index, 0, 0), &attrs)
    }

    /// A request the kernel acknowledges.
    fn change(
        &mut self,
        kind: u16,
        header: [u8; IFINFOMSG_LEN],
        attrs: &[u8],
    ) -> Result<(), Error> {
        self.request(kind, NLM_F_ACK, header, attrs).map(|_| ())
    }

    /// Sends one request and waits for its answer (skipping anything else).
    fn request(
        &mut self,
        kind: u16,
        flags: u16,
        header: [u8; IFINFOMSG_LEN],
        attrs: &[u8],
    ) -> Result<Reply, Error> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let len = NLMSG_HDRLEN + IFINFOMSG_LEN + attrs.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&header);
        msg.extend_from_slice(attrs);
        // SAFETY: zeroed memory is a valid sockaddr_nl; pid 0 is the kernel.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `msg` is a valid buffer of its length; the address is a
        // sockaddr_nl of the size given.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(Error::Os(io::Error::last_os_error()));
        }
        let mut buf = vec![0u8; RECV_BUFFER];
        loop {
            // SAFETY: `buf` is a valid writable buffer of its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if e.kind() == io::ErrorKind::WouldBlock {
                    return Err(Error::Protocol(format!(
                        "no reply from the kernel within {REPLY_TIMEOUT:?}"
                    )));
                }
                return Err(Error::Os(e));
            }
            let n = n as usize;
            if n > buf.len() {
                return Err(Error::Protocol(format!(
                    "a netlink reply of {n} bytes, over {RECV_BUFFER}"
                )));
            }
            if let Some(reply) = parse_replies(&buf[..n], seq)? {
                return Ok(reply);
            }
        }
    }
}

/// The answer to one request.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Ack,
    Link(Link),
}

/// The answer to request `seq` among the messages of one datagram, if there.
fn parse_replies(mut data: &[u8], seq: u32) -> Result<Option<Reply>, Error> {
    while data.len() >= NLMSG_HDRLEN {
        let len = u32_at(data, 0) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            return Err(Error::Protocol(format!(
                "a netlink message of length {len} in {} bytes",
                data.len()
            )));
        }
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        let msg_seq = u32_at(data, 8);
        let payload = &data[NLMSG_HDRLEN..len];
        if msg_seq == seq {
            match kind {
                NLMSG_ERROR => {
                    if payload.len() < 4 {
                        return Err(Error::Protocol("a short netlink error message".into()));
                    }
                    let errno =
                        -i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
                    return match errno {
                        0 => Ok(Some(Reply::Ack)),
                        libc::ENODEV => Err(Error::LinkNotFound),
                        errno => Err(Error::Os(io::Error::from_raw_os_error(errno))),
                    };
                }
                RTM_NEWLINK => return parse_link(payload).map(|l| Some(Reply::Link(l))),
                _ => {}
            }
        }
        data = &data[align(len).min(data.len())..];
    }
    Ok(None)
}

/// An `RTM_NEWLINK` message's `ifinfomsg` and the attributes we use.
fn parse_link(payload: &[u8]) -> Result<Link, Error> {
    if payload.len() < IFINFOMSG_LEN {
        return Err(Error::Protocol("a short link message".into()));
    }
    let index = i32::from_ne_bytes([payload[4], payload[5], payload[6], payload[7]]);
    let flags = u32_at(payload, 8);
    let mut link = Link {
        index,
        name: String::new(),
        flags,
        alias: String::new(),
    };
    let mut attrs = &payload[IFINFOMSG_LEN..];
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return Err(Error::Protocol(format!("a link attribute of length {len}")));
        }
        let value = &attrs[4..len];
        let text = || {
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            String::from_utf8_lossy(&value[..end]).into_owned()
        };
        match kind {
            IFLA_IFNAME => link.name = text(),
            IFLA_IFALIAS => link.alias = text(),
            _ => {}
        }
        attrs = &attrs[align(len).min(attrs.len())..];
    }
    Ok(link)
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut h = [0u8; IFINFOMSG_LEN];
    h[0] = libc::AF_UNSPEC as u8;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len() + align(len) - len, 0);
}

/// A name as the kernel takes it, NUL-terminated (the kernel judges the
/// rest: at most 15 bytes, no `/`, `:` or white space...).
fn c_string(name: &str) -> Result<Vec<u8>, Error> {
    CString::new(name)
        .map(CString::into_bytes_with_nul)
        .map_err(|_| Error::Protocol(format!("interface name {name:?} holds a NUL")))
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_to_four_bytes() {
        let mut buf = Vec::new();
        push_attr(&mut buf, IFLA_IFNAME, b"eth1\0");
        assert_eq!(buf.len(), 12);
        assert_eq!(u16::from_ne_bytes([buf[0], buf[1]]), 9);
        assert_eq!(&buf[4..9], b"eth1\0");
        assert_eq!(&buf[9..], [0, 0, 0]);
    }
}

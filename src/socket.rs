//! The handles the crate keeps of one socket.
//!
//! A connection writes through the socket it was given, reads on its own
//! thread through a second handle, and keeps a third to shut the socket
//! down from any thread (which wakes a reader blocked in `read`).

use std::os::unix::net::UnixStream;

use crate::{Error, Result};

/// The extra handles of a socket: one to read with, one to shut it down.
#[derive(Debug)]
pub(crate) struct SocketClones {
    /// For the reading thread.
    pub(crate) read: UnixStream,
    /// For shutting the socket down.
    pub(crate) control: UnixStream,
}

impl SocketClones {
    /// Clones `stream` twice; `what` names the socket in the error.
    pub(crate) fn of(stream: &UnixStream, what: &str) -> Result<SocketClones> {
        let clone = || {
            stream
                .try_clone()
                .map_err(|e| Error::io(format!("cannot clone the {what} socket"), e))
        };
        Ok(SocketClones {
            read: clone()?,
            control: clone()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::Shutdown;

    use super::*;

    #[test]
    fn the_clones_read_and_shut_down_the_same_socket() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut clones = SocketClones::of(&b, "test").unwrap();
        a.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        clones.read.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
        clones.control.shutdown(Shutdown::Both).unwrap();
        assert_eq!(a.read(&mut buf).unwrap(), 0);
    }
}

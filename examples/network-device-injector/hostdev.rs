//! Moving a host network device into a pod's network namespace under a new
//! name, and back under its old one: the steps of the Go plugin's
//! `host-device.go` (itself from the CNI `host-device` plugin), each undone
//! in reverse order when a later one fails, so that a failure leaves the
//! device where and as it was.
//!
//! In: down, renamed `temp_<index>` (free in both namespaces), moved, its
//! host name saved as its alias, renamed, up. Out: down, renamed
//! `temp_<index>`, moved back, renamed after its alias; it stays down.

use super::netlink::{Link, NetNs, Socket};

/// One step to undo, as a closure over the sockets it needs.
type Undo<'a> = Box<dyn FnOnce(&mut Socket, &mut Socket) + 'a>;

/// Undo steps, run last first by [`Rollback::run`].
#[derive(Default)]
struct Rollback<'a> {
    steps: Vec<Undo<'a>>,
}

impl<'a> Rollback<'a> {
    fn clear(&mut self) {
        self.steps.clear();
    }

    fn push(&mut self, step: impl FnOnce(&mut Socket, &mut Socket) + 'a) {
        self.steps.push(Box::new(step));
    }

    /// Best effort: a step that fails leaves the later ones to try.
    fn run(self, host: &mut Socket, container: &mut Socket) {
        for step in self.steps.into_iter().rev() {
            step(host, container);
        }
    }
}

/// The temporary name of the device with index `index`.
fn temp_name(index: i32) -> String {
    format!("temp_{index}")
}

/// Moves `host_dev` (found through `host`, a socket in `host_ns`) into
/// `container_ns` and names it `if_name` there; returns it as found there.
pub fn move_link_in(
    host: &mut Socket,
    host_ns: &NetNs,
    host_dev: &Link,
    container_ns: &NetNs,
    if_name: &str,
) -> Result<Link, String> {
    let mut container = container_ns
        .socket()
        .map_err(|e| format!("failed to open a netlink socket in the container namespace: {e}"))?;
    let mut undo = Rollback::default();
    let result = move_in_steps(
        host,
        &mut container,
        host_ns,
        host_dev,
        container_ns,
        if_name,
        &mut undo,
    );
    if result.is_err() {
        undo.run(host, &mut container);
    }
    result
}

fn move_in_steps<'a>(
    host: &mut Socket,
    container: &mut Socket,
    host_ns: &'a NetNs,
    host_dev: &'a Link,
    container_ns: &NetNs,
    if_name: &'a str,
    undo: &mut Rollback<'a>,
) -> Result<Link, String> {
    let name = host_dev.name.as_str();
    let index = host_dev.index;
    host.set_up(index, false)
        .map_err(|e| format!("failed to set {name:?} down: {e}"))?;
    if host_dev.is_up() {
        undo.push(move |h, _| {
            let _ = h.set_up(index, true);
        });
    }
    let temp = temp_name(index);
    host.set_name(index, &temp).map_err(|e| {
        format!("failed to rename device {name:?} to temporary name: failed to rename device {name:?} to {temp:?}: {e}")
    })?;
    undo.push(move |h, _| {
        let _ = h.set_name(index, name);
    });
    host.set_ns(index, container_ns)
        .map_err(|e| format!("failed to move {temp:?} to container ns: {e}"))?;
    // Moved: undoing now means moving it back to the host (where it may get
    // another index), finding it by its temporary name, and restoring its
    // name and state there; the steps above no longer apply.
    undo.clear();
    let temp_back = temp.clone();
    undo.push(move |h, c| {
        let Ok(dev) = c.link_by_name(&temp_back) else {
            return;
        };
        let _ = c.set_ns(dev.index, host_ns);
        if let Ok(back) = h.link_by_name(&temp_back) {
            let _ = h.set_name(back.index, name);
            if host_dev.is_up() {
                let _ = h.set_up(back.index, true);
            }
        }
    });
    let dev = container
        .link_by_name(&temp)
        .map_err(|e| format!("failed to find {temp:?}: {e}"))?;
    let moved_index = dev.index;
    container
        .set_alias(dev.index, name)
        .map_err(|e| format!("failed to set alias to {temp:?}: {e}"))?;
    container
        .set_name(dev.index, if_name)
        .map_err(|e| format!("failed to rename device {temp:?} to {if_name:?}: {e}"))?;
    let temp_again = temp.clone();
    undo.push(move |_, c| {
        let _ = c.set_name(moved_index, &temp_again);
    });
    container
        .set_up(dev.index, true)
        .map_err(|e| format!("failed to set {if_name:?} up: {e}"))?;
    undo.push(move |_, c| {
        let _ = c.set_up(moved_index, false);
    });
    container
        .link_by_name(if_name)
        .map_err(|e| format!("failed to find {if_name:?}: {e}"))
}

/// Moves the device named `if_name` in `container_ns` back to `host_ns`
/// (`host` is a socket there), renamed after its alias; it stays down.
pub fn move_link_out(
    host: &mut Socket,
    host_ns: &NetNs,
    container_ns: &NetNs,
    if_name: &str,
) -> Result<(), String> {
    let mut container = container_ns
        .socket()
        .map_err(|e| format!("failed to open a netlink socket in the container namespace: {e}"))?;
    let mut undo = Rollback::default();
    let result = move_out_steps(
        host,
        &mut container,
        host_ns,
        container_ns,
        if_name,
        &mut undo,
    );
    if result.is_err() {
        undo.run(host, &mut container);
    }
    result
}

fn move_out_steps<'a>(
    host: &mut Socket,
    container: &mut Socket,
    host_ns: &NetNs,
    container_ns: &'a NetNs,
    if_name: &'a str,
    undo: &mut Rollback<'a>,
) -> Result<(), String> {
    let dev = container
        .link_by_name(if_name)
        .map_err(|e| format!("failed to find {if_name:?}: {e}"))?;
    let index = dev.index;
    let was_up = dev.is_up();
    container
        .set_up(index, false)
        .map_err(|e| format!("failed to set {if_name:?} down: {e}"))?;
    undo.push(move |_, c| {
        let _ = c.set_name(index, if_name);
        if was_up {
            let _ = c.set_up(index, true);
        }
    });
    let temp = temp_name(index);
    container.set_name(index, &temp).map_err(|e| {
        format!("failed to rename device {if_name:?} to temporary name: failed to rename device {if_name:?} to {temp:?}: {e}")
    })?;
    container
        .set_ns(index, host_ns)
        .map_err(|e| format!("failed to move {temp:?} to host netns: {e}"))?;
    // Moved: undoing now means moving it back into the container; the
    // steps above no longer apply.
    undo.clear();
    let temp_in = temp.clone();
    undo.push(move |h, c| {
        let Ok(dev) = h.link_by_name(&temp_in) else {
            return;
        };
        let _ = h.set_ns(dev.index, container_ns);
        if let Ok(again) = c.link_by_name(&temp_in) {
            let _ = c.set_name(again.index, if_name);
            if was_up {
                let _ = c.set_up(again.index, true);
            }
        }
    });
    let back = host
        .link_by_name(&temp)
        .map_err(|e| format!("failed to find {temp:?} in host namespace: {e}"))?;
    if back.alias.is_empty() {
        return Err(format!(
            "failed to restore {temp:?} to its original name: the device has no alias naming it"
        ));
    }
    host.set_name(back.index, &back.alias).map_err(|e| {
        format!(
            "failed to restore {temp:?} to original name {:?}: {e}",
            back.alias
        )
    })
}

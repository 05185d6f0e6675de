//! Whether the current thread is running one of the plugin's handlers (or
//! the on-close callback): calls that would deadlock or wait for the
//! thread itself look here first.

use std::cell::Cell;

thread_local! {
    static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as in a handler until dropped.
pub(super) struct HandlerScope {
    /// What the flag was before, restored on drop (scopes nest).
    was: bool,
}

impl HandlerScope {
    pub(super) fn enter() -> HandlerScope {
        HandlerScope {
            was: IN_HANDLER.with(|f| f.replace(true)),
        }
    }
}

impl Drop for HandlerScope {
    fn drop(&mut self) {
        IN_HANDLER.with(|f| f.set(self.was));
    }
}

/// True while the current thread runs a handler.
pub(super) fn in_handler() -> bool {
    IN_HANDLER.with(|f| f.get())
}

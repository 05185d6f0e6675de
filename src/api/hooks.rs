//! Helpers on [`Hooks`], the OCI lifecycle hooks of a container.
//!
//! Upstream's conversions to and from OCI runtime-spec hooks (`ToOCI`,
//! `FromOCIHooks`, `FromOCIHookSlice`) are left out: they need the
//! runtime-spec types, which this crate does not model.

use super::Hooks;

impl Hooks {
    /// Appends every hook list of `other` to the same list of `self`, and
    /// returns `self` for chaining.
    ///
    /// ```
    /// use nri::api::{Hook, Hooks};
    /// let hook = |path: &str| Hook { path: path.into(), ..Default::default() };
    /// let mut hooks = Hooks { prestart: vec![hook("/bin/a")], ..Default::default() };
    /// hooks.append(Hooks { prestart: vec![hook("/bin/b")], poststop: vec![hook("/bin/c")], ..Default::default() });
    /// assert_eq!(hooks.prestart.len(), 2);
    /// assert_eq!(hooks.poststop[0].path, "/bin/c");
    /// ```
    pub fn append(&mut self, mut other: Hooks) -> &mut Self {
        self.prestart.append(&mut other.prestart);
        self.create_runtime.append(&mut other.create_runtime);
        self.create_container.append(&mut other.create_container);
        self.start_container.append(&mut other.start_container);
        self.poststart.append(&mut other.poststart);
        self.poststop.append(&mut other.poststop);
        self
    }

    /// Whether no hook of any kind is set.
    ///
    /// ```
    /// use nri::api::{Hook, Hooks};
    /// assert!(Hooks::new().is_empty());
    /// let hooks = Hooks { poststart: vec![Hook::new()], ..Default::default() };
    /// assert!(!hooks.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.prestart.is_empty()
            && self.create_runtime.is_empty()
            && self.create_container.is_empty()
            && self.start_container.is_empty()
            && self.poststart.is_empty()
            && self.poststop.is_empty()
    }

    /// `Some(self)` when any hook is set, `None` when none is (upstream's
    /// `Hooks()`), handy for leaving an empty hooks message out.
    ///
    /// ```
    /// use nri::api::{Hook, Hooks};
    /// assert!(Hooks::new().hooks().is_none());
    /// let hooks = Hooks { create_runtime: vec![Hook::new()], ..Default::default() };
    /// assert!(hooks.hooks().is_some());
    /// ```
    pub fn hooks(&self) -> Option<&Hooks> {
        (!self.is_empty()).then_some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Hook;

    fn hook(path: &str) -> Hook {
        Hook {
            path: path.to_string(),
            ..Default::default()
        }
    }

    #[test]
    fn append_keeps_order_for_every_hook_kind() {
        let one = Hooks {
            prestart: vec![hook("1")],
            create_runtime: vec![hook("1")],
            create_container: vec![hook("1")],
            start_container: vec![hook("1")],
            poststart: vec![hook("1")],
            poststop: vec![hook("1")],
            ..Default::default()
        };
        let mut two = one.clone();
        for list in [
            &mut two.prestart,
            &mut two.create_runtime,
            &mut two.create_container,
            &mut two.start_container,
            &mut two.poststart,
            &mut two.poststop,
        ] {
            list[0].path = "2".to_string();
        }
        let mut hooks = one;
        hooks.append(two);
        for list in [
            &hooks.prestart,
            &hooks.create_runtime,
            &hooks.create_container,
            &hooks.start_container,
            &hooks.poststart,
            &hooks.poststop,
        ] {
            let paths: Vec<&str> = list.iter().map(|h| h.path.as_str()).collect();
            assert_eq!(paths, ["1", "2"]);
        }
    }

    #[test]
    fn appending_empty_hooks_changes_nothing() {
        let mut hooks = Hooks {
            poststop: vec![hook("x")],
            ..Default::default()
        };
        let before = hooks.clone();
        hooks.append(Hooks::new());
        assert_eq!(hooks, before);
    }

    #[test]
    fn hooks_is_none_only_when_every_list_is_empty() {
        assert!(Hooks::new().hooks().is_none());
        let only_last = Hooks {
            poststop: vec![hook("x")],
            ..Default::default()
        };
        assert!(only_last.hooks().is_some());
        assert!(!only_last.is_empty());
    }
}

//! Helpers on [`Hooks`], the OCI lifecycle hooks of a container, and
//! constructors for [`Hook`]s.
//!
//! Upstream's conversions to and from OCI runtime-spec hooks (`ToOCI`,
//! `FromOCIHooks`, `FromOCIHookSlice`) are left out: they need the
//! runtime-spec types, which this crate does not model.

use super::{optional, Hook, Hooks};

impl Hook {
    /// A hook running the program at `path` (an absolute path on the host)
    /// with the command line `args`, program name first, as `execv` takes
    /// it. No environment, no timeout.
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, Hook, Hooks};
    /// let hook = Hook::command("/bin/sh", ["sh", "-c", "echo started >/dev/kmsg"]);
    /// assert_eq!(hook.args[0], "sh");
    ///
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.add_hooks(Hooks::new().with_poststart(hook));
    /// assert_eq!(adjust.hooks.poststart[0].path, "/bin/sh");
    /// ```
    pub fn command<I>(path: impl Into<String>, args: I) -> Hook
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Hook {
            path: path.into(),
            args: args.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// This hook with the environment variable `key=value` added.
    ///
    /// ```
    /// use nri::api::Hook;
    /// let hook = Hook::command("/usr/local/bin/gpu-hook", ["gpu-hook"])
    ///     .with_env("LOG_LEVEL", "debug")
    ///     .with_env("PATH", "/usr/bin");
    /// assert_eq!(hook.env, ["LOG_LEVEL=debug", "PATH=/usr/bin"]);
    /// ```
    pub fn with_env(mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> Hook {
        self.env
            .push(format!("{}={}", key.as_ref(), value.as_ref()));
        self
    }

    /// This hook with a time limit of `seconds`, after which the OCI
    /// runtime gives up on it.
    ///
    /// ```
    /// use nri::api::{Hook, OptionalExt};
    /// let hook = Hook::command("/usr/bin/true", ["true"]).with_timeout(5);
    /// assert_eq!(hook.timeout.value(), Some(5));
    /// ```
    pub fn with_timeout(mut self, seconds: i64) -> Hook {
        self.timeout = optional(seconds);
        self
    }
}

/// The `with_*` builders of [`Hooks`], one per hook list.
macro_rules! hook_list_builders {
    ($($(#[$attr:meta])* $name:ident => $list:ident,)*) => {
        impl Hooks {
            $(
                #[doc = concat!("These hooks with `hook` appended to the `", stringify!($list), "` hooks.")]
                $(#[$attr])*
                pub fn $name(mut self, hook: Hook) -> Hooks {
                    self.$list.push(hook);
                    self
                }
            )*
        }
    };
}

hook_list_builders! {
    with_prestart => prestart,
    with_create_runtime => create_runtime,
    with_create_container => create_container,
    with_start_container => start_container,
    ///
    /// ```
    /// use nri::api::{Hook, Hooks};
    /// let hooks = Hooks::new().with_poststart(Hook::command("/bin/true", ["true"]));
    /// assert_eq!(hooks.poststart.len(), 1);
    /// ```
    with_poststart => poststart,
    with_poststop => poststop,
}

impl Hooks {
    /// The hook lists in lifecycle order: prestart, create_runtime,
    /// create_container, start_container, poststart, poststop.
    fn lists(&self) -> [&Vec<Hook>; 6] {
        [
            &self.prestart,
            &self.create_runtime,
            &self.create_container,
            &self.start_container,
            &self.poststart,
            &self.poststop,
        ]
    }

    /// [`Hooks::lists`], mutable.
    fn lists_mut(&mut self) -> [&mut Vec<Hook>; 6] {
        [
            &mut self.prestart,
            &mut self.create_runtime,
            &mut self.create_container,
            &mut self.start_container,
            &mut self.poststart,
            &mut self.poststop,
        ]
    }

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
        for (mine, theirs) in self.lists_mut().into_iter().zip(other.lists_mut()) {
            mine.append(theirs);
        }
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
        self.lists().iter().all(|list| list.is_empty())
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
    use crate::api::OptionalExt;

    #[test]
    fn command_hook_keeps_argv_as_given() {
        let hook = Hook::command("/usr/bin/env", ["env", "-i"]);
        assert_eq!(hook.path, "/usr/bin/env");
        assert_eq!(hook.args, ["env", "-i"]);
        assert!(hook.env.is_empty());
        assert_eq!(hook.timeout.value(), None);
        let no_args = Hook::command("/bin/true", Vec::<String>::new());
        assert!(no_args.args.is_empty());
    }

    #[test]
    fn hooks_builders_fill_only_their_own_list_in_order() {
        let hooks = Hooks::new()
            .with_poststop(hook("a"))
            .with_poststop(hook("b"))
            .with_create_runtime(hook("c"));
        let paths: Vec<&str> = hooks.poststop.iter().map(|h| h.path.as_str()).collect();
        assert_eq!(paths, ["a", "b"]);
        assert_eq!(hooks.create_runtime[0].path, "c");
        assert!(hooks.prestart.is_empty() && hooks.poststart.is_empty());
        assert!(hooks.create_container.is_empty() && hooks.start_container.is_empty());

        let every = Hooks::new()
            .with_prestart(hook("1"))
            .with_create_runtime(hook("2"))
            .with_create_container(hook("3"))
            .with_start_container(hook("4"))
            .with_poststart(hook("5"))
            .with_poststop(hook("6"));
        let firsts: Vec<&str> = every
            .lists()
            .iter()
            .map(|list| {
                assert_eq!(list.len(), 1);
                list[0].path.as_str()
            })
            .collect();
        assert_eq!(every.prestart[0].path, "1");
        assert_eq!(every.poststop[0].path, "6");
        assert_eq!(firsts, ["1", "2", "3", "4", "5", "6"]);
    }

    fn hook(path: &str) -> Hook {
        Hook {
            path: path.to_string(),
            ..Default::default()
        }
    }

    /// Hooks with one hook named `path` in every list.
    fn in_every_list(path: &str) -> Hooks {
        let mut hooks = Hooks::new();
        for list in hooks.lists_mut() {
            list.push(hook(path));
        }
        hooks
    }

    #[test]
    fn append_keeps_order_for_every_hook_kind() {
        let mut hooks = in_every_list("1");
        hooks.append(in_every_list("2"));
        assert_eq!(hooks.poststop.len(), 2);
        for list in hooks.lists() {
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

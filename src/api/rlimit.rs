//! Constructors for [`POSIXRlimit`], the POSIX resource limits of a
//! container's process.

use super::POSIXRlimit;

impl POSIXRlimit {
    /// The limit on `resource`, named as the OCI runtime spec names it
    /// (`RLIMIT_NOFILE`, `RLIMIT_MEMLOCK`…), with its `hard` ceiling and
    /// the `soft` value the kernel enforces. The name is kept as given; the
    /// OCI runtime refuses names it does not know, and a soft limit above
    /// the hard one.
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, POSIXRlimit};
    /// let nofile = POSIXRlimit::limit("RLIMIT_NOFILE", 4096, 1024);
    /// assert_eq!((nofile.type_.as_str(), nofile.hard, nofile.soft), ("RLIMIT_NOFILE", 4096, 1024));
    ///
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.rlimits.push(nofile);
    /// assert_eq!(adjust.rlimits[0].soft, 1024);
    /// ```
    pub fn limit(resource: impl Into<String>, hard: u64, soft: u64) -> POSIXRlimit {
        POSIXRlimit {
            type_: resource.into(),
            hard,
            soft,
            ..Default::default()
        }
    }

    /// Whether the soft limit does not exceed the hard one, as the kernel
    /// requires.
    ///
    /// ```
    /// use nri::api::POSIXRlimit;
    /// assert!(POSIXRlimit::limit("RLIMIT_NPROC", 512, 512).is_consistent());
    /// assert!(!POSIXRlimit::limit("RLIMIT_NPROC", 256, 512).is_consistent());
    /// ```
    pub fn is_consistent(&self) -> bool {
        self.soft <= self.hard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_keeps_the_resource_name_verbatim() {
        let limit = POSIXRlimit::limit("nofile", 10, 5);
        assert_eq!(limit.type_, "nofile");
        assert_eq!((limit.hard, limit.soft), (10, 5));
    }

    #[test]
    fn unlimited_values_are_consistent() {
        assert!(POSIXRlimit::limit("RLIMIT_CORE", u64::MAX, u64::MAX).is_consistent());
        assert!(POSIXRlimit::limit("RLIMIT_CORE", u64::MAX, 0).is_consistent());
        assert!(!POSIXRlimit::limit("RLIMIT_CORE", 0, 1).is_consistent());
    }
}

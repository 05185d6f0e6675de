//! Removal markers: how an adjustment asks the runtime to remove an item.
//!
//! An annotation key, mount destination, environment variable name or device
//! path that starts with `-` in a `ContainerAdjustment` means "remove this
//! item" rather than "add it". A plugin also removes an item before setting
//! it again to claim an item another plugin touched without a conflict. The
//! `ContainerAdjustment::remove_*` methods use these helpers; runtimes and
//! tests use [`is_marked_for_removal`] to read them back.

/// The marker that prefixes a key to be removed.
///
/// ```
/// assert_eq!(nri::api::REMOVAL_MARKER, '-');
/// ```
pub const REMOVAL_MARKER: char = '-';

/// The key with the removal marker in front.
///
/// ```
/// use nri::api::mark_for_removal;
/// assert_eq!(mark_for_removal("/dev/fuse"), "-/dev/fuse");
/// ```
pub fn mark_for_removal(key: &str) -> String {
    let mut marked = String::with_capacity(key.len() + 1);
    marked.push(REMOVAL_MARKER);
    marked.push_str(key);
    marked
}

/// The key without its marker when the key is marked for removal, or `None`
/// when it is not (an empty key is never marked).
///
/// ```
/// use nri::api::is_marked_for_removal;
/// assert_eq!(is_marked_for_removal("-HTTP_PROXY"), Some("HTTP_PROXY"));
/// assert_eq!(is_marked_for_removal("HTTP_PROXY"), None);
/// ```
pub fn is_marked_for_removal(key: &str) -> Option<&str> {
    key.strip_prefix(REMOVAL_MARKER)
}

/// The key without the removal marker, whether or not it had one.
///
/// ```
/// use nri::api::clear_removal_marker;
/// assert_eq!(clear_removal_marker("-/mnt/data"), "/mnt/data");
/// assert_eq!(clear_removal_marker("/mnt/data"), "/mnt/data");
/// ```
pub fn clear_removal_marker(key: &str) -> &str {
    is_marked_for_removal(key).unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_marker_round_trips() {
        for key in ["io.kubernetes.cri-o/Devices", "/dev/null", "PATH", "", "-x"] {
            let marked = mark_for_removal(key);
            assert_eq!(is_marked_for_removal(&marked), Some(key));
            assert_eq!(clear_removal_marker(&marked), key);
        }
    }

    #[test]
    fn unmarked_and_empty_keys_are_not_marked() {
        assert_eq!(is_marked_for_removal(""), None);
        assert_eq!(is_marked_for_removal("key-with-dash"), None);
        assert_eq!(clear_removal_marker(""), "");
    }

    #[test]
    fn only_one_marker_is_stripped() {
        assert_eq!(is_marked_for_removal("--x"), Some("-x"));
        assert_eq!(clear_removal_marker("--x"), "-x");
    }
}

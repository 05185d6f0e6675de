//! Plugin identity: the rules for a plugin's two-digit index and its name,
//! and splitting a full plugin name (`NN-name`, as in `10-logger`) into the
//! two.
//!
//! The index orders plugins in the runtime (lower runs first). The name rule
//! is the one runtimes enforce since NRI v0.12; v0.9.0 runtimes accept more,
//! so a name that passes here is accepted by every runtime. Where the name
//! and index come from (options, environment, executable name) is the stub's
//! business, not this module's.

use crate::{Error, Result};

/// Rule broken by a full plugin name without a `-` between index and name.
const RULE_FULL_NAME: &str = "expected the form NN-name: a two-digit index, '-', then the name";
/// Rule broken by an empty plugin name.
const RULE_NOT_EMPTY: &str = "it must not be empty";
/// Rule broken by a plugin name with a character outside the allowed set.
const RULE_CHARSET: &str = "it may contain only ASCII letters, digits, '_', '.', '+' and '-'";

/// A plugin's two-digit index and its name without the index, as it
/// registered (both sides of the connection keep one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PluginId {
    /// Two digits.
    pub(crate) index: String,
    /// The name without the index.
    pub(crate) name: String,
}

impl PluginId {
    /// `NN-name`.
    pub(crate) fn full_name(&self) -> String {
        format!("{}-{}", self.index, self.name)
    }
}

/// Splits a full plugin name such as `"10-logger"` into its index and name
/// at the first `-`, checking the index with [`validate_plugin_index`].
///
/// Like upstream's `ParsePluginName`, it does not check the name part; call
/// [`validate_plugin_name`] on it for that.
///
/// # Errors
///
/// [`Error::InvalidPluginName`] when there is no `-`, and
/// [`Error::InvalidPluginIndex`] when the part before it is not two digits.
///
/// ```
/// use nri::api::parse_plugin_name;
/// let (idx, name) = parse_plugin_name("10-device-injector")?;
/// assert_eq!((idx.as_str(), name.as_str()), ("10", "device-injector"));
/// assert!(parse_plugin_name("logger").is_err());
/// assert!(parse_plugin_name("1-logger").is_err());
/// # Ok::<(), nri::Error>(())
/// ```
pub fn parse_plugin_name(full_name: &str) -> Result<(String, String)> {
    let Some((index, name)) = full_name.split_once('-') else {
        return Err(Error::InvalidPluginName {
            name: full_name.to_string(),
            rule: RULE_FULL_NAME,
        });
    };
    validate_plugin_index(index)?;
    Ok((index.to_string(), name.to_string()))
}

/// Checks that a plugin index is exactly two ASCII digits (`00` to `99`).
///
/// # Errors
///
/// [`Error::InvalidPluginIndex`] naming the index.
///
/// ```
/// use nri::api::validate_plugin_index;
/// assert!(validate_plugin_index("05").is_ok());
/// let err = validate_plugin_index("7").unwrap_err();
/// assert!(err.to_string().contains("\"7\""));
/// ```
pub fn validate_plugin_index(index: &str) -> Result<()> {
    let bytes = index.as_bytes();
    if bytes.len() == 2 && bytes.iter().all(u8::is_ascii_digit) {
        Ok(())
    } else {
        Err(Error::InvalidPluginIndex {
            index: index.to_string(),
        })
    }
}

/// Checks that a plugin name (without its index) is non-empty and uses only
/// `[A-Za-z0-9_.+-]`.
///
/// # Errors
///
/// [`Error::InvalidPluginName`] naming the name and the rule it breaks.
///
/// ```
/// use nri::api::validate_plugin_name;
/// assert!(validate_plugin_name("device-injector_v1.2+x").is_ok());
/// assert!(validate_plugin_name("").is_err());
/// let err = validate_plugin_name("my plugin").unwrap_err();
/// assert!(err.to_string().contains("\"my plugin\""));
/// ```
pub fn validate_plugin_name(name: &str) -> Result<()> {
    let rule = if name.is_empty() {
        RULE_NOT_EMPTY
    } else if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
    {
        return Ok(());
    } else {
        RULE_CHARSET
    };
    Err(Error::InvalidPluginName {
        name: name.to_string(),
        rule,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_name_splits_at_first_dash() {
        let (idx, name) = parse_plugin_name("10-logger").unwrap();
        assert_eq!((idx.as_str(), name.as_str()), ("10", "logger"));
        let (idx, name) = parse_plugin_name("99-a-b-c").unwrap();
        assert_eq!((idx.as_str(), name.as_str()), ("99", "a-b-c"));
    }

    #[test]
    fn full_name_with_empty_name_part_is_split_like_upstream() {
        let (idx, name) = parse_plugin_name("00-").unwrap();
        assert_eq!((idx.as_str(), name.as_str()), ("00", ""));
        assert!(validate_plugin_name(&name).is_err());
    }

    #[test]
    fn full_name_without_dash_is_rejected_with_its_value() {
        let err = parse_plugin_name("logger").unwrap_err();
        assert!(matches!(&err, Error::InvalidPluginName { name, .. } if name == "logger"));
        let msg = err.to_string();
        assert!(msg.contains("\"logger\""), "{msg}");
        assert!(msg.contains("NN-name"), "{msg}");
    }

    #[test]
    fn full_name_with_bad_index_reports_the_index() {
        let err = parse_plugin_name("1x-logger").unwrap_err();
        assert!(matches!(&err, Error::InvalidPluginIndex { index } if index == "1x"));
        assert!(err.to_string().contains("\"1x\""), "{err}");
    }

    #[test]
    fn plugin_index_must_be_two_digits() {
        for good in ["00", "09", "10", "99"] {
            assert!(validate_plugin_index(good).is_ok(), "{good}");
        }
        for bad in ["", "7", "100", "1a", "a1", " 1", "-1", "١٢", "1\u{0}"] {
            let err = validate_plugin_index(bad).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
            assert!(msg.contains("two digits"), "{msg}");
        }
    }

    #[test]
    fn plugin_name_accepts_only_the_allowed_characters() {
        for good in ["logger", "Device_Injector", "v1.2+build-3", "-", "x"] {
            assert!(validate_plugin_name(good).is_ok(), "{good}");
        }
        for bad in ["my plugin", "a/b", "naïve", "tab\t", "semi;colon"] {
            let err = validate_plugin_name(bad).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidPluginName { name, rule } if name == bad && *rule == RULE_CHARSET),
                "{err}"
            );
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn plugin_name_must_not_be_empty() {
        let err = validate_plugin_name("").unwrap_err();
        assert!(err.to_string().contains("must not be empty"), "{err}");
    }
}

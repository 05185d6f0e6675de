//! Environment variables: converting between [`KeyValue`] messages and the
//! `KEY=VALUE` strings of a container's environment, and reading removal
//! markers on them.
//!
//! `Container.env` arrives as `KEY=VALUE` strings while
//! `ContainerAdjustment.env` carries `KeyValue`s; these helpers move between
//! the two (upstream's `KeyValue.ToOCI` and `FromOCIEnv`).

use super::{is_marked_for_removal, KeyValue};

impl KeyValue {
    /// The variable `key` with `value`.
    ///
    /// ```
    /// use nri::api::KeyValue;
    /// let lang = KeyValue::pair("LANG", "C.UTF-8");
    /// assert_eq!(lang.to_env_string(), "LANG=C.UTF-8");
    /// ```
    pub fn pair(key: impl Into<String>, value: impl Into<String>) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }
    }

    /// The `KEY=VALUE` form of this variable.
    ///
    /// ```
    /// use nri::api::KeyValue;
    /// let kv = KeyValue { key: "LANG".into(), value: "C.UTF-8".into(), ..Default::default() };
    /// assert_eq!(kv.to_env_string(), "LANG=C.UTF-8");
    /// ```
    pub fn to_env_string(&self) -> String {
        format!("{}={}", self.key, self.value)
    }

    /// Splits `KEY=VALUE` at the first `=`; without any `=` the whole entry
    /// is the key and the value is empty.
    ///
    /// ```
    /// use nri::api::KeyValue;
    /// let kv = KeyValue::from_env_string("OPTS=a=b");
    /// assert_eq!((kv.key.as_str(), kv.value.as_str()), ("OPTS", "a=b"));
    /// let bare = KeyValue::from_env_string("DEBUG");
    /// assert_eq!((bare.key.as_str(), bare.value.as_str()), ("DEBUG", ""));
    /// ```
    pub fn from_env_string(entry: &str) -> KeyValue {
        let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
        KeyValue::pair(key, value)
    }

    /// The variable name without its marker when this entry asks for the
    /// variable's removal, `None` otherwise.
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.remove_env("DEBUG").add_env("LANG", "C");
    /// assert_eq!(adjust.env[0].is_marked_for_removal(), Some("DEBUG"));
    /// assert_eq!(adjust.env[1].is_marked_for_removal(), None);
    /// ```
    pub fn is_marked_for_removal(&self) -> Option<&str> {
        is_marked_for_removal(&self.key)
    }
}

/// The `KEY=VALUE` strings of a list of variables, in order.
///
/// ```
/// use nri::api::{from_env_strings, to_env_strings};
/// let env = from_env_strings(&["A=1", "B=2"]);
/// assert_eq!(to_env_strings(&env), ["A=1", "B=2"]);
/// ```
pub fn to_env_strings(env: &[KeyValue]) -> Vec<String> {
    env.iter().map(KeyValue::to_env_string).collect()
}

/// The variables of a list of `KEY=VALUE` strings (such as `Container.env`),
/// in order, each split as [`KeyValue::from_env_string`] does.
///
/// ```
/// use nri::api::from_env_strings;
/// let env = from_env_strings(&["PATH=/usr/bin".to_string(), "EMPTY=".to_string()]);
/// assert_eq!(env[0].key, "PATH");
/// assert_eq!(env[1].value, "");
/// ```
pub fn from_env_strings<S: AsRef<str>>(entries: &[S]) -> Vec<KeyValue> {
    entries
        .iter()
        .map(|entry| KeyValue::from_env_string(entry.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pair as a literal message, to compare the constructors with.
    fn kv(key: &str, value: &str) -> KeyValue {
        let mut kv = KeyValue::new();
        kv.key = key.to_string();
        kv.value = value.to_string();
        kv
    }

    #[test]
    fn pair_sets_key_and_value_verbatim() {
        assert_eq!(KeyValue::pair("A", "b=c"), kv("A", "b=c"));
        assert_eq!(KeyValue::pair(String::from("-X"), ""), kv("-X", ""));
    }

    #[test]
    fn env_string_splits_at_first_equals_sign() {
        assert_eq!(KeyValue::from_env_string("K=a=b=c"), kv("K", "a=b=c"));
        assert_eq!(KeyValue::from_env_string("K="), kv("K", ""));
        assert_eq!(KeyValue::from_env_string("=v"), kv("", "v"));
    }

    #[test]
    fn env_string_without_equals_is_a_bare_key() {
        assert_eq!(KeyValue::from_env_string("FLAG"), kv("FLAG", ""));
        assert_eq!(KeyValue::from_env_string(""), kv("", ""));
    }

    #[test]
    fn env_strings_round_trip_when_every_entry_has_equals() {
        let entries = ["A=1", "B=", "C=x=y", "D=ünïcødé"];
        let env = from_env_strings(&entries);
        assert_eq!(env.len(), 4);
        assert_eq!(to_env_strings(&env), entries);
    }

    #[test]
    fn bare_key_gains_equals_when_written_back() {
        assert_eq!(to_env_strings(&from_env_strings(&["FLAG"])), ["FLAG="]);
    }

    #[test]
    fn removal_marked_variable_is_recognised() {
        assert_eq!(kv("-HOME", "").is_marked_for_removal(), Some("HOME"));
        assert_eq!(kv("HOME", "-x").is_marked_for_removal(), None);
    }
}

//! Reading the logging keys (`logFile`, `syslog`, `verbose`) out of a
//! plugin's configuration text, without a YAML library.
//!
//! The text is whatever the runtime hands the plugin in Configure, YAML by
//! convention, and must be a mapping (or empty: blank, comments, `~`).
//! Only the top level of a block mapping (`key: value` lines starting in
//! column 0) or of a flow mapping (`{"key": value, …}`, which covers JSON)
//! is read; nested lines and every other key are skipped without being
//! checked. A top-level line that is neither a `key:` nor a comment (a
//! list, a lone scalar, `[[[`) makes the text not a mapping: an error. The
//! three keys take single-line scalars: plain, `'single'` or `"double"`
//! quoted, with an optional `# comment`.

use std::path::PathBuf;

use crate::{Error, Result};

/// The logging settings of a plugin: where log lines go and how many.
///
/// Every field is optional: `None` leaves the current setting as it is, so
/// that the settings of the command line stay in force unless the runtime's
/// configuration says otherwise. Build one in code, or read it from
/// configuration text with [`LogConfig::from_text`].
///
/// ```
/// use nri::logging::LogConfig;
/// let config = LogConfig::from_text("logFile: /var/log/nri-gpu.log  # appended\nverbose: yes\nother: 1\n")?;
/// assert_eq!(config.file.as_deref(), Some(std::path::Path::new("/var/log/nri-gpu.log")));
/// assert_eq!((config.syslog, config.verbose), (None, Some(true)));
/// # Ok::<(), nri::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogConfig {
    /// Append log lines to this file (`logFile`); wins over `syslog`.
    pub file: Option<PathBuf>,
    /// `Some(true)`: send log lines to the system logger through `/dev/log`
    /// (`syslog`); `Some(false)`: stop doing so (back to stderr).
    pub syslog: Option<bool>,
    /// `Some(true)`: debug messages too (`verbose`); `Some(false)`:
    /// informational messages and above only.
    pub verbose: Option<bool>,
}

/// The configuration key naming a log file.
pub const LOG_FILE_KEY: &str = "logFile";
/// The configuration key turning syslog on or off.
pub const SYSLOG_KEY: &str = "syslog";
/// The configuration key turning debug messages on or off.
pub const VERBOSE_KEY: &str = "verbose";

impl LogConfig {
    /// Reads `logFile`, `syslog` and `verbose` from a plugin's
    /// configuration text (see the module docs for the subset read). A key
    /// that is absent, empty, `~` or `null` stays `None`; a later duplicate
    /// wins.
    ///
    /// Fails with [`Error::Config`], naming the line, when the text is not a
    /// mapping (`[[[`, `- a`, a lone word), and naming the key and line when
    /// one of the three keys has a value of the wrong kind (`verbose:
    /// maybe`, a list, a block scalar) or an unterminated quote.
    ///
    /// ```
    /// use nri::logging::LogConfig;
    /// // JSON is a flow mapping too.
    /// let config = LogConfig::from_text(r#"{"syslog": true, "rules": [{"a": 1}]}"#)?;
    /// assert_eq!(config.syslog, Some(true));
    /// let err = LogConfig::from_text("verbose: maybe\n").unwrap_err();
    /// assert!(err.to_string().contains("verbose"));
    /// # Ok::<(), nri::Error>(())
    /// ```
    pub fn from_text(text: &str) -> Result<LogConfig> {
        let mut config = LogConfig::default();
        for entry in top_level_entries(text)? {
            let Entry { key, value, line } = entry;
            let what = |rule: &str| Error::Config(format!("{key} (line {line}): {rule}"));
            let slot = match key.as_str() {
                LOG_FILE_KEY | SYSLOG_KEY | VERBOSE_KEY => value,
                _ => continue,
            };
            let scalar = match slot {
                Value::Scalar(s) => s,
                Value::Null => {
                    match key.as_str() {
                        LOG_FILE_KEY => config.file = None,
                        SYSLOG_KEY => config.syslog = None,
                        _ => config.verbose = None,
                    }
                    continue;
                }
                Value::Nested => return Err(what("expected a single value, found a collection")),
                Value::Block => {
                    return Err(what("expected a single-line value, found a block scalar"))
                }
            };
            match key.as_str() {
                LOG_FILE_KEY => config.file = Some(PathBuf::from(scalar)),
                SYSLOG_KEY => {
                    config.syslog =
                        Some(boolean(&scalar).ok_or_else(|| {
                            what(&format!("expected true or false, got {scalar:?}"))
                        })?)
                }
                _ => {
                    config.verbose =
                        Some(boolean(&scalar).ok_or_else(|| {
                            what(&format!("expected true or false, got {scalar:?}"))
                        })?)
                }
            }
        }
        Ok(config)
    }

    /// Whether no setting is given.
    ///
    /// ```
    /// use nri::logging::LogConfig;
    /// assert!(LogConfig::from_text("events: pod\n")?.is_empty());
    /// # Ok::<(), nri::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.file.is_none() && self.syslog.is_none() && self.verbose.is_none()
    }
}

/// A boolean as YAML 1.1 spells it, in any case.
fn boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "y" => Some(true),
        "false" | "no" | "off" | "n" => Some(false),
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Value {
    /// A single-line string, unquoted.
    Scalar(String),
    /// Empty, `~` or `null`.
    Null,
    /// A flow or block collection.
    Nested,
    /// A `|` or `>` block scalar.
    Block,
}

#[derive(Debug)]
struct Entry {
    key: String,
    value: Value,
    line: usize,
}

fn top_level_entries(text: &str) -> Result<Vec<Entry>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut entries = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        let line = i + 1;
        i += 1;
        let trimmed = raw.trim();
        if trimmed.is_empty()
            || trimmed.starts_with('#')
            || raw.starts_with(char::is_whitespace)
            || is_document_marker(raw)
            || raw.starts_with('%')
            // `? key` / `: value`: an explicit mapping entry.
            || raw.starts_with("? ")
            || raw.starts_with(": ")
        {
            continue;
        }
        if raw.starts_with('{') {
            let rest = lines[i - 1..].join("\n");
            return flow_entries(&rest, line).map(|mut flow| {
                entries.append(&mut flow);
                entries
            });
        }
        if entries.is_empty() && matches!(trimmed, "~" | "null" | "Null" | "NULL") {
            // An empty document.
            continue;
        }
        let Some((key, rest)) = split_key(raw, line)? else {
            let what = if raw.starts_with('[') {
                "a list"
            } else if raw.starts_with("- ") || raw == "-" {
                "a list item"
            } else {
                "neither `key: value` nor a comment"
            };
            return Err(Error::Config(format!(
                "the configuration is not a YAML mapping: line {line} is {what}: {:?}",
                clip(raw)
            )));
        };
        let mut value = scalar_value(rest, line, &key)?;
        if value == Value::Null {
            // `key:` followed by an indented block is a nested collection.
            let next = lines[i..]
                .iter()
                .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
            if next.is_some_and(|l| l.starts_with(char::is_whitespace) || l.starts_with('-')) {
                value = Value::Nested;
            }
        }
        entries.push(Entry { key, value, line });
    }
    Ok(entries)
}

/// Whether a line is `---` or `...` (a document start or end), alone or
/// before a space.
fn is_document_marker(raw: &str) -> bool {
    ["---", "..."].iter().any(|marker| {
        raw.strip_prefix(marker)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    })
}

/// The start of a line, for messages.
fn clip(raw: &str) -> String {
    raw.chars().take(40).collect()
}

/// Splits `key: rest` (the key plain or quoted); `None` for a line that is
/// not a mapping entry.
fn split_key(raw: &str, line: usize) -> Result<Option<(String, &str)>> {
    if raw.starts_with('"') || raw.starts_with('\'') {
        let (key, after) = quoted(raw, line)?;
        let after = after.trim_start();
        return Ok(after.strip_prefix(':').map(|rest| (key, rest)));
    }
    // A plain key ends at the first `:` followed by a space or the line's end.
    let bytes = raw.as_bytes();
    for (at, &b) in bytes.iter().enumerate() {
        if b == b':' && !matches!(bytes.get(at + 1), Some(c) if !c.is_ascii_whitespace()) {
            return Ok(Some((raw[..at].trim_end().to_string(), &raw[at + 1..])));
        }
        if b == b'#' && at > 0 && bytes[at - 1].is_ascii_whitespace() {
            return Ok(None);
        }
    }
    Ok(None)
}

/// The value after a block mapping's `key:`.
fn scalar_value(rest: &str, line: usize, key: &str) -> Result<Value> {
    let rest = rest.trim();
    if rest.is_empty() || rest.starts_with('#') {
        return Ok(Value::Null);
    }
    if rest.starts_with('"') || rest.starts_with('\'') {
        let (value, after) = quoted(rest, line)?;
        let after = after.trim_start();
        if !after.is_empty() && !after.starts_with('#') {
            return Err(Error::Config(format!(
                "{key} (line {line}): unexpected {after:?} after the quoted value"
            )));
        }
        return Ok(Value::Scalar(value));
    }
    if rest.starts_with('[') || rest.starts_with('{') {
        return Ok(Value::Nested);
    }
    if rest.starts_with('|') || rest.starts_with('>') {
        return Ok(Value::Block);
    }
    // A plain scalar ends at ` #`.
    let end = rest
        .char_indices()
        .find(|&(at, c)| c == '#' && rest[..at].ends_with(char::is_whitespace))
        .map_or(rest.len(), |(at, _)| at);
    let value = rest[..end].trim_end();
    Ok(match value {
        "~" | "null" | "Null" | "NULL" => Value::Null,
        _ => Value::Scalar(value.to_string()),
    })
}

/// A quoted string at the start of `text` and what follows it.
fn quoted(text: &str, line: usize) -> Result<(String, &str)> {
    let mut chars = text.char_indices();
    let quote = match chars.next() {
        Some((_, q @ ('"' | '\''))) => q,
        _ => return Err(Error::Config(format!("line {line}: expected a quote"))),
    };
    let mut out = String::new();
    while let Some((at, c)) = chars.next() {
        match (quote, c) {
            ('\'', '\'') => {
                if text[at + 1..].starts_with('\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    return Ok((out, &text[at + 1..]));
                }
            }
            ('"', '"') => return Ok((out, &text[at + 1..])),
            ('"', '\\') => {
                let escaped = chars.next().map(|(_, e)| e);
                match escaped {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('0') => out.push('\0'),
                    Some(e @ ('"' | '\\' | '/' | ' ')) => out.push(e),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).map(|(_, h)| h).collect();
                        let decoded = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == 4)
                            .and_then(char::from_u32)
                            .ok_or_else(|| {
                                Error::Config(format!("line {line}: invalid escape \\u{hex}"))
                            })?;
                        out.push(decoded);
                    }
                    other => {
                        return Err(Error::Config(format!(
                            "line {line}: unsupported escape \\{}",
                            other.map(String::from).unwrap_or_default()
                        )))
                    }
                }
            }
            _ => out.push(c),
        }
    }
    Err(Error::Config(format!(
        "line {line}: unterminated {quote} quote"
    )))
}

/// The entries of a flow mapping (`{ … }`, JSON included) starting at the
/// first character of `text`, which is on line `first_line`.
fn flow_entries(text: &str, first_line: usize) -> Result<Vec<Entry>> {
    let mut scanner = Scanner {
        text,
        at: 0,
        line: first_line,
    };
    scanner.expect('{')?;
    let mut entries = Vec::new();
    loop {
        scanner.skip_blank();
        match scanner.peek() {
            Some('}') => break,
            None => return Err(scanner.error("unterminated '{'")),
            _ => {}
        }
        let line = scanner.line;
        let key = match scanner.peek() {
            Some('"' | '\'') => scanner.quoted()?,
            _ => scanner.plain(&[':'])?,
        };
        scanner.skip_blank();
        scanner.expect(':')?;
        scanner.skip_blank();
        let value = match scanner.peek() {
            Some('"' | '\'') => Value::Scalar(scanner.quoted()?),
            Some('{' | '[') => {
                scanner.skip_collection()?;
                Value::Nested
            }
            _ => match scanner.plain(&[',', '}'])?.as_str() {
                "" | "~" | "null" | "Null" | "NULL" => Value::Null,
                plain => Value::Scalar(plain.to_string()),
            },
        };
        entries.push(Entry { key, value, line });
        scanner.skip_blank();
        match scanner.peek() {
            Some(',') => scanner.at += 1,
            Some('}') => break,
            _ => return Err(scanner.error("expected ',' or '}'")),
        }
    }
    Ok(entries)
}

struct Scanner<'a> {
    text: &'a str,
    at: usize,
    line: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn error(&self, what: &str) -> Error {
        Error::Config(format!(
            "line {}: {what} in the configuration's flow mapping",
            self.line
        ))
    }

    fn expect(&mut self, c: char) -> Result<()> {
        if self.peek() == Some(c) {
            self.bump();
            Ok(())
        } else {
            Err(self.error(&format!("expected {c:?}")))
        }
    }

    /// Skips whitespace, line breaks and `#` comments.
    fn skip_blank(&mut self) {
        while let Some(c) = self.peek() {
            if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else if c.is_whitespace() {
                self.bump();
            } else {
                break;
            }
        }
    }

    fn quoted(&mut self) -> Result<String> {
        let (value, rest) = quoted(&self.text[self.at..], self.line)?;
        let consumed = self.text.len() - self.at - rest.len();
        for _ in self.text[self.at..self.at + consumed].chars() {
            self.bump();
        }
        Ok(value)
    }

    /// A plain scalar up to one of `stops` (or a line break), trimmed.
    fn plain(&mut self, stops: &[char]) -> Result<String> {
        let start = self.at;
        while let Some(c) = self.peek() {
            if stops.contains(&c) || c == '\n' {
                break;
            }
            self.bump();
        }
        Ok(self.text[start..self.at].trim().to_string())
    }

    /// Skips a nested `{…}` or `[…]`, quotes included.
    fn skip_collection(&mut self) -> Result<()> {
        let mut closers = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                '"' | '\'' => {
                    self.quoted()?;
                    continue;
                }
                '{' => closers.push('}'),
                '[' => closers.push(']'),
                '}' | ']' => {
                    if closers.pop() != Some(c) {
                        return Err(self.error(&format!("mismatched {c:?}")));
                    }
                    if closers.is_empty() {
                        self.bump();
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.bump();
        }
        Err(self.error("unterminated collection"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> LogConfig {
        LogConfig::from_text(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn error(text: &str) -> String {
        LogConfig::from_text(text).expect_err(text).to_string()
    }

    #[test]
    fn reads_the_three_keys_of_a_block_mapping() {
        let config = parse("logFile: /var/log/x.log\nsyslog: false\nverbose: true\n");
        assert_eq!(config.file, Some(PathBuf::from("/var/log/x.log")));
        assert_eq!(config.syslog, Some(false));
        assert_eq!(config.verbose, Some(true));
    }

    #[test]
    fn absent_keys_stay_unset_and_other_keys_are_not_checked() {
        let config = parse("events: [pod, container]\nrules:\n  - verbose: maybe\n  - {a: b}\n");
        assert!(config.is_empty());
        assert!(parse("").is_empty());
        assert!(parse("# only a comment\n").is_empty());
    }

    #[test]
    fn nested_keys_with_our_names_are_not_ours() {
        let config = parse("plugin:\n  verbose: true\n  logFile: /nested\n");
        assert!(config.is_empty(), "{config:?}");
    }

    #[test]
    fn quotes_comments_and_yaml_booleans_are_understood() {
        let config =
            parse("'logFile': \"/var/log/a b.log\" # spaces kept\nverbose: Yes\nsyslog: 'off'\n");
        assert_eq!(config.file, Some(PathBuf::from("/var/log/a b.log")));
        assert_eq!(config.verbose, Some(true));
        assert_eq!(config.syslog, Some(false));
        let config = parse("logFile: /var/log/plugin#1.log   # the # in the path stays\n");
        assert_eq!(config.file, Some(PathBuf::from("/var/log/plugin#1.log")));
        let config = parse("logFile: 'it''s.log'\n");
        assert_eq!(config.file, Some(PathBuf::from("it's.log")));
        let config = parse("logFile: \"tab\\there\\u00e9\"\n");
        assert_eq!(config.file, Some(PathBuf::from("tab\there\u{e9}")));
    }

    #[test]
    fn null_values_unset_and_the_last_duplicate_wins() {
        assert_eq!(parse("logFile:\nverbose: ~\n"), LogConfig::default());
        assert_eq!(parse("verbose: true\nverbose: null\n").verbose, None);
        assert_eq!(parse("verbose: false\nverbose: on\n").verbose, Some(true));
    }

    #[test]
    fn json_and_flow_mappings_are_read_at_their_top_level() {
        let config = parse(
            "{\n  \"logFile\": \"/tmp/p.log\",\n  \"nested\": {\"verbose\": false, \"x\": [1, \"}\"]},\n  \"verbose\": true\n}\n",
        );
        assert_eq!(config.file, Some(PathBuf::from("/tmp/p.log")));
        assert_eq!(config.verbose, Some(true));
        assert_eq!(parse("{syslog: yes, other: 3}").syslog, Some(true));
        assert!(parse("{}").is_empty());
    }

    #[test]
    fn wrong_values_of_our_keys_are_errors_naming_key_and_line() {
        // Each text, and what its error must say.
        let cases: [(&str, &[&str]); 11] = [
            (
                "events: pod\nverbose: maybe\n",
                &["verbose (line 2)", "\"maybe\""],
            ),
            ("syslog: [true]\n", &["syslog (line 1)", "collection"]),
            ("logFile:\n  path: /x\n", &["logFile (line 1)"]),
            ("logFile: |\n  /x\n", &["block scalar"]),
            ("logFile: \"/x\n", &["line 1", "unterminated"]),
            ("logFile: \"/x\" trailing\n", &["trailing"]),
            ("{\"verbose\": maybe}", &["verbose (line 1)"]),
            ("{\"verbose\": true", &["expected ',' or '}'"]),
            ("{\"a\": [1, 2}", &["mismatched '}'"]),
            ("{\"a\": [1, 2", &["unterminated collection"]),
            ("logFile: \"\\q\"\n", &["escape"]),
        ];
        for (text, wants) in cases {
            let err = error(text);
            for want in wants {
                assert!(err.contains(want), "{text:?}: {err:?} lacks {want:?}");
            }
        }
    }

    #[test]
    fn key_needs_a_space_after_its_colon() {
        // `logFile:/x` is a plain scalar in YAML, not a key: the text is
        // not a mapping.
        assert!(error("logFile:/x\n").contains("not a YAML mapping"));
        assert!(parse("url: http://example.com\n").is_empty());
    }

    #[test]
    fn text_that_is_not_a_mapping_is_an_error_naming_the_line() {
        for (text, what) in [
            ("[[[", "line 1 is a list"),
            ("- a\n- b\n", "line 1 is a list item"),
            ("just words\n", "line 1 is neither"),
            ("# comment\nverbose: true\noops\n", "line 3 is neither"),
            ("-\n", "line 1 is a list item"),
        ] {
            let err = error(text);
            assert!(
                err.contains("not a YAML mapping") && err.contains(what),
                "{text:?}: {err}"
            );
        }
        // Empty documents, markers, directives and explicit keys are fine.
        for text in [
            "",
            "\n\n",
            "# nothing\n",
            "~\n",
            "null",
            "---\nverbose: true\n...\n",
            "%YAML 1.1\n---\nsyslog: false\n",
            "? complex\n: value\n",
            "{}",
            "--- # a comment\nverbose: yes\n",
        ] {
            assert!(LogConfig::from_text(text).is_ok(), "{text:?}");
        }
        assert_eq!(parse("---\nverbose: true\n").verbose, Some(true));
    }
}

//! Peer-supplied text made safe to log.
//!
//! A plugin names itself, a runtime names its version, either side writes
//! the messages of its error statuses, and pods carry annotations: all of
//! it arrives from a peer that may be hostile, and all of it ends up in log
//! lines. A name holding a newline would forge a second log line; an escape
//! sequence would drive the terminal reading the log; a bidirectional
//! override would make a line read differently from what it says.
//!
//! [`Escape`] wraps any `Display` value and writes it with every control
//! character (C0, DEL, C1), the Unicode line and paragraph separators and
//! the bidirectional formatting characters replaced by an escape:
//! `\n`, `\r`, `\t`, or `\u{..}`. Clean text is written as it is, in runs,
//! without allocating. The crate's log lines wrap every value that came
//! from a peer, and every error that may carry one, in it.

use std::fmt::{self, Display, Write};

/// Writes the wrapped value with control and formatting characters
/// escaped; see the module docs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Escape<T>(pub(crate) T);

impl<T: Display> Display for Escape<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(Escaping(f), "{}", self.0)
    }
}

/// True for the characters [`Escape`] replaces.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Line and paragraph separators.
            '\u{2028}' | '\u{2029}'
            // Bidirectional marks, embeddings, overrides and isolates.
            | '\u{200e}' | '\u{200f}' | '\u{061c}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
        )
}

/// A writer that escapes what goes through it.
struct Escaping<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut clean = 0;
        for (at, c) in s.char_indices() {
            if !needs_escape(c) {
                continue;
            }
            self.0.write_str(&s[clean..at])?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", c as u32)?,
            }
            clean = at + c.len_utf8();
        }
        self.0.write_str(&s[clean..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_formatting_characters_are_escaped_and_clean_text_is_kept() {
        let cases = [
            ("10-plugin", "10-plugin"),
            ("a\nb", "a\\nb"),
            (
                "x\r\n2024-01-01 INFO forged",
                "x\\r\\n2024-01-01 INFO forged",
            ),
            ("tab\there", "tab\\there"),
            ("\u{1b}[31mred", "\\u{1b}[31mred"),
            ("nul\0", "nul\\u{0}"),
            ("del\u{7f}", "del\\u{7f}"),
            ("c1\u{85}", "c1\\u{85}"),
            ("rtl\u{202e}txt.exe", "rtl\\u{202e}txt.exe"),
            ("iso\u{2066}x\u{2069}", "iso\\u{2066}x\\u{2069}"),
            ("line\u{2028}sep", "line\\u{2028}sep"),
            ("ünïcödé and 日本", "ünïcödé and 日本"),
            ("back\\slash", "back\\slash"),
            ("", ""),
        ];
        for (raw, want) in cases {
            assert_eq!(Escape(raw).to_string(), want, "{raw:?}");
        }
    }

    #[test]
    fn any_display_value_is_escaped_as_it_is_written() {
        let e = crate::Error::Protocol("plugin \"a\nb\" misbehaved".into());
        assert_eq!(
            Escape(&e).to_string(),
            "protocol violation: plugin \"a\\nb\" misbehaved"
        );
        assert_eq!(
            format!("[{}]", Escape(format_args!("{}-{}", "10", "x\ny"))),
            "[10-x\\ny]"
        );
    }
}

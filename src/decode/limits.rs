//! Bounds on what decoding holds in memory.
//!
//! A YAML document can repeat a part of itself through aliases: a few
//! hundred bytes can stand for millions of values (the "billion laughs").
//! go-yaml v2 refuses a document whose values are mostly alias expansions;
//! on top of that, the values and the text of a decoded document are
//! counted here, aliases expanded, and a document over either bound is
//! refused.

/// Most values (scalars, lists and mappings, aliases expanded) in one
/// decoded YAML document.
pub const MAX_VALUES: usize = 250_000;

/// Most bytes of scalar text (keys included, aliases expanded) in one
/// decoded YAML document.
pub const MAX_TEXT: usize = 16 << 20;

/// What a document has used of [`MAX_VALUES`] and [`MAX_TEXT`].
#[derive(Debug, Default)]
pub(crate) struct Budget {
    values: usize,
    text: usize,
}

impl Budget {
    /// Counts one more value.
    pub fn value(&mut self) -> Result<(), String> {
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(format!(
                "document too large: more than {MAX_VALUES} values once aliases are expanded"
            ));
        }
        Ok(())
    }

    /// Counts `len` more bytes of scalar text.
    pub fn text(&mut self, len: usize) -> Result<(), String> {
        self.text = self.text.saturating_add(len);
        if self.text > MAX_TEXT {
            return Err(format!(
                "document too large: more than {MAX_TEXT} bytes of text once aliases are expanded"
            ));
        }
        Ok(())
    }
}

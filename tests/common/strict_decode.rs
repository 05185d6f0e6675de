//! The oracle the in-place decoder is checked against: a fresh decode with
//! the protobuf crate, as strict as the crate's own decoding (the top-level
//! message is bounded by the buffer, so a nested length may not run past
//! it). Used by `tests/reuse_decode.rs` and, with `#[path]`, by the fuzz
//! target `reuse_decode`.

use protobuf::{CodedInputStream, Message};

/// Decodes `bytes` as a fresh `M`, strictly.
pub fn fresh<M: Message>(bytes: &[u8]) -> protobuf::Result<M> {
    let mut is = CodedInputStream::from_bytes(bytes);
    let outer = is.push_limit(bytes.len() as u64)?;
    let m = M::parse_from(&mut is)?;
    is.pop_limit(outer);
    Ok(m)
}

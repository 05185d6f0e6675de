//! Protobuf on the wire: the crate's one hand-written layer under the
//! generated messages.
//!
//! - [`decode`]: strict decoding of a whole generated message. The protobuf
//!   crate's `parse_from_bytes` sets no outer limit, so a nested message or
//!   map entry at the very end of the buffer may declare a length past the
//!   end and still decode (it stops at the end of the input). Go's decoder
//!   refuses such input; [`decode`] bounds the top-level message by the
//!   buffer, so every nested length must fit inside its parent, as in Go.
//! - [`wire`]: varints, tags, length-delimited fields and skipping, for the
//!   few places that frame or scan protobuf bytes themselves instead of
//!   going through a generated message (a reply framed around its payload,
//!   a request envelope whose payload stays in its frame, a Synchronize
//!   request scanned without decoding its items).
//! - [`reuse`]: decoding into a message decoded before, reusing the
//!   strings, vectors, maps and boxes it holds (the typed request handlers
//!   of the plugin service).

pub(crate) mod cost;
pub(crate) mod reuse;
pub(crate) mod wire;

use protobuf::{CodedInputStream, Message};

/// Decodes `bytes` as exactly one `M`, refusing nested lengths that run
/// past their parent or past the end of the input.
pub(crate) fn decode<M: Message>(bytes: &[u8]) -> protobuf::Result<M> {
    let mut is = CodedInputStream::from_bytes(bytes);
    let outer = is.push_limit(bytes.len() as u64)?;
    let m = M::parse_from(&mut is)?;
    is.pop_limit(outer);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use protobuf::Message;

    use super::*;
    use crate::proto::nri::{Container, SynchronizeRequest};

    #[test]
    fn a_nested_length_past_the_end_is_refused() {
        // Container with an annotations entry (field 6) declaring 16 bytes
        // where only 2 follow.
        let bytes = [0x32, 0x10, 0x0a, 0x00];
        assert!(decode::<Container>(&bytes).is_err());
        // The same entry inside a SynchronizeRequest's container.
        let outer = [0x12, 0x04, 0x32, 0x10, 0x0a, 0x00];
        assert!(decode::<SynchronizeRequest>(&outer).is_err());
    }

    #[test]
    fn well_formed_input_decodes_as_usual() {
        let c = Container {
            id: "c1".into(),
            annotations: [("a".to_string(), "b".to_string())].into(),
            args: vec!["sleep".into(), "1".into()],
            ..Default::default()
        };
        let bytes = c.write_to_bytes().unwrap();
        assert_eq!(decode::<Container>(&bytes).unwrap(), c);
        assert_eq!(decode::<Container>(&[]).unwrap(), Container::default());
    }
}

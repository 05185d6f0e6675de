// Shared by the codec targets (included with `#[path]`, not a crate).

/// Splits `data` into chunks whose sizes follow from `ctl`: `0` feeds the
/// whole input at once, `1` feeds it byte by byte, anything else draws
/// sizes in `1..=ctl` from a small xorshift seeded by `ctl`, so one input
/// byte steers every split point a decoder has to survive.
pub fn chunks(ctl: u8, data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut state = u32::from(ctl).wrapping_mul(0x9E37_79B9) | 1;
    while !rest.is_empty() {
        let n = match ctl {
            0 => rest.len(),
            1 => 1,
            max => {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                1 + (state % u32::from(max)) as usize
            }
        };
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

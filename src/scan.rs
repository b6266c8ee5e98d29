//! Finding bytes in large buffers fast: the loops of the hot paths (an event stream's line
//! ends, JSON bodies checked for whitespace) written so the compiler makes them vector code.

/// How many bytes are looked at together: a chunk with no hit is passed over at once.
const CHUNK: usize = 32;

/// The position of the first byte of `bytes` for which `hit` holds.
///
/// Each chunk is tested whole (an OR over its bytes, with no early exit, which the compiler
/// turns into a few vector instructions), and searched byte by byte only when it holds a hit.
#[inline]
pub(crate) fn find(bytes: &[u8], hit: impl Fn(u8) -> bool) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(CHUNK);
    let mut at = 0;
    for chunk in &mut chunks {
        let chunk: &[u8; CHUNK] = chunk.try_into().ok()?;
        if chunk.iter().fold(false, |any, &b| any | hit(b)) {
            return chunk.iter().position(|&b| hit(b)).map(|i| at + i);
        }
        at += CHUNK;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| hit(b))
        .map(|i| at + i)
}

/// Whether JSON text has no whitespace outside its strings: it is one line, written
/// compactly. (JSON strings hold no raw control characters, so no line end is inside one.)
pub(crate) fn is_compact_json(json: &[u8]) -> bool {
    let mut rest = json;
    loop {
        // Between strings: the next string, or whitespace.
        let Some(at) = find(rest, |b| {
            b == b'"' || matches!(b, b' ' | b'\t' | b'\n' | b'\r')
        }) else {
            return true;
        };
        if rest[at] != b'"' {
            return false;
        }
        rest = &rest[at + 1..];
        // In a string: its closing quote, stepping over escapes (`\"` among them).
        loop {
            let Some(at) = find(rest, |b| b == b'"' || b == b'\\') else {
                return true;
            };
            if rest[at] == b'"' {
                rest = &rest[at + 1..];
                break;
            }
            rest = rest.get(at + 2..).unwrap_or(&[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_agrees_with_a_plain_search_at_every_position() {
        for len in [0, 1, 31, 32, 33, 64, 100] {
            for at in 0..len {
                let mut bytes = vec![b'x'; len];
                bytes[at] = b'\n';
                if at + 3 < len {
                    bytes[at + 3] = b'\n';
                }
                assert_eq!(find(&bytes, |b| b == b'\n'), Some(at), "{len} {at}");
            }
            assert_eq!(find(&vec![b'x'; len], |b| b == b'\n'), None);
        }
    }

    #[test]
    fn compact_json_is_told_from_json_with_whitespace() {
        let pad = "x".repeat(100);
        for compact in [
            "1".to_string(),
            "{\"a\":1,\"b\":[1,2]}".to_string(),
            "\"with spaces\\tand \\\"quotes\\\" inside\"".to_string(),
            format!("{{\"pad\":\"{pad} {pad}\",\"k\":\"\\\\\"}}"),
            "[\"\\\\\",\"a b\"]".to_string(),
        ] {
            assert!(is_compact_json(compact.as_bytes()), "{compact}");
        }
        for spaced in [
            "{\"a\": 1}".to_string(),
            " 1".to_string(),
            "[1,\n2]".to_string(),
            format!("{{\"pad\":\"{pad}\",\"k\":\"\\\\\"\r}}"),
            "[\"\\\\\", \"a\"]".to_string(),
            format!("{{\"pad\":\"{pad}\\\"\"\t}}"),
        ] {
            assert!(!is_compact_json(spaced.as_bytes()), "{spaced:?}");
        }
    }
}

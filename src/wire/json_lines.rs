//! Splitting a JSON-lines body into records as bytes arrive: newline-delimited JSON (NDJSON,
//! JSON Lines: one value a line, LF or CRLF, blank lines skipped) and JSON text sequences
//! (RFC 7464: each record starts with RS, 0x1E, and ends with LF). Bounded: a record over the
//! limit is an error, never a buffer that grows with the stream.

use std::fmt;

use bytes::Bytes;

/// The record separator of RFC 7464.
const RS: u8 = 0x1E;
/// White space held after a record beyond the limit, before the record's end.
const PADDING: usize = 64;

/// A record longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong(pub usize);

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a line is over {} bytes", self.0)
    }
}

impl std::error::Error for TooLong {}

/// An incremental splitter: feed it pieces of any size, take whole records out.
#[derive(Debug, Clone)]
pub struct Splitter {
    /// The record begun and not yet ended.
    pending: Vec<u8>,
    /// RFC 7464 framing (records begin with RS) rather than one record a line.
    seq: bool,
    max: usize,
}

impl Splitter {
    /// A splitter for one record a line, each at most `max` bytes.
    pub fn lines(max: usize) -> Splitter {
        Splitter {
            pending: Vec::new(),
            seq: false,
            max,
        }
    }

    /// A splitter for RFC 7464 JSON text sequences, each record at most `max` bytes.
    pub fn json_seq(max: usize) -> Splitter {
        Splitter {
            seq: true,
            ..Splitter::lines(max)
        }
    }

    /// Takes the next piece of the body; adds the records it completed to `records`, white
    /// space around each trimmed, empty ones skipped. After an error, the records completed
    /// before the one over the limit are there; the splitter is then of no further use.
    pub fn feed(&mut self, bytes: &[u8], records: &mut Vec<Bytes>) -> Result<(), TooLong> {
        self.feed_from(bytes, None, records)
    }

    /// Like [`Splitter::feed`], for a piece that records may share: a record that lies whole
    /// in it is a slice of `piece`, not a copy.
    pub fn feed_shared(&mut self, piece: &Bytes, records: &mut Vec<Bytes>) -> Result<(), TooLong> {
        self.feed_from(piece, Some(piece), records)
    }

    /// Splits `bytes`, which are `shared` when given.
    fn feed_from(
        &mut self,
        bytes: &[u8],
        shared: Option<&Bytes>,
        records: &mut Vec<Bytes>,
    ) -> Result<(), TooLong> {
        let end = if self.seq { RS } else { b'\n' };
        let mut rest = bytes;
        while let Some(at) = memchr::memchr(end, rest) {
            match shared {
                // Whole in the piece: checked as `take` would, and sliced.
                Some(piece) if self.pending.is_empty() => {
                    let record = rest[..at].trim_ascii_start();
                    self.check(record.len(), record.trim_ascii_end().len())?;
                    let record = record.trim_ascii_end();
                    if !record.is_empty() {
                        records.push(piece.slice_ref(record));
                    }
                }
                _ => {
                    self.take(&rest[..at])?;
                    self.finish_record(records);
                }
            }
            rest = &rest[at + 1..];
        }
        self.take(rest)
    }

    /// At a clean end of the body: the last record, when it was not ended (a last line
    /// without its LF; in a sequence, the last record, which RS does not end).
    pub fn finish(&mut self) -> Option<Bytes> {
        let mut records = Vec::new();
        self.finish_record(&mut records);
        records.pop()
    }

    fn take(&mut self, mut bytes: &[u8]) -> Result<(), TooLong> {
        // White space before a record is not kept; after one, a little is (a CR, padding)
        // and does not count: a server's padding is not a record.
        if self.pending.is_empty() {
            bytes = bytes.trim_ascii_start();
        }
        self.check(
            self.pending.len() + bytes.len(),
            self.pending.len() + bytes.trim_ascii_end().len(),
        )?;
        self.pending.extend_from_slice(bytes);
        Ok(())
    }

    /// Whether a record of `held` bytes, `content` of them before white space at its end, is
    /// within the limit.
    fn check(&self, held: usize, content: usize) -> Result<(), TooLong> {
        if held > self.max && (content > self.max || held > self.max.saturating_add(PADDING)) {
            return Err(TooLong(self.max));
        }
        Ok(())
    }

    fn finish_record(&mut self, records: &mut Vec<Bytes>) {
        let record = std::mem::take(&mut self.pending);
        let trimmed = record.trim_ascii();
        if trimmed.is_empty() {
            return;
        }
        if trimmed.len() == record.len() {
            records.push(Bytes::from(record));
        } else {
            records.push(Bytes::copy_from_slice(trimmed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(mut s: Splitter, pieces: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        for piece in pieces {
            s.feed(piece, &mut out).unwrap();
        }
        out.extend(s.finish());
        out.into_iter()
            .map(|r| String::from_utf8(r.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn shared_pieces_split_as_copied_ones_do() {
        // Pieces cut at every place of texts of records, blank space, CRLF and over-long
        // records: slices of a shared piece are the records, and the errors, of copies.
        let texts: [&[u8]; 4] = [
            b"{\"a\":1}\r\n\n  {\"b\"  :2}\n  \n3",
            b"\x1e{\"a\":1}\n\x1e[1,\n2]\n\x1e\"x\"\n",
            b"12345\n1\n",
            b"1234      \n1234\n",
        ];
        for (i, text) in texts.iter().enumerate() {
            let make = || match i {
                1 => Splitter::json_seq(6),
                _ => Splitter::lines(4),
            };
            for cut in 0..=text.len() {
                let run = |shared: bool| {
                    let (mut s, mut out) = (make(), Vec::new());
                    let mut errors = Vec::new();
                    for piece in [&text[..cut], &text[cut..]] {
                        let result = if shared {
                            s.feed_shared(&Bytes::copy_from_slice(piece), &mut out)
                        } else {
                            s.feed(piece, &mut out)
                        };
                        errors.push(result);
                    }
                    out.extend(s.finish());
                    (out, errors)
                };
                assert_eq!(run(true), run(false), "{i} cut at {cut}");
            }
        }
        let piece = Bytes::from_static(b"1\n  [2]  \n3");
        let mut out = Vec::new();
        Splitter::lines(10).feed_shared(&piece, &mut out).unwrap();
        assert_eq!(out, [&b"1"[..], b"[2]"]);
        assert_eq!(out[1].as_ptr(), piece[4..].as_ptr(), "a slice, not a copy");
    }

    #[test]
    fn lines_split_across_pieces_crlf_and_blank_lines() {
        assert_eq!(
            split(
                Splitter::lines(100),
                &[b"{\"a\":1}\r\n\n{\"b\"", b":2}\n", b"  \n3"]
            ),
            ["{\"a\":1}", "{\"b\":2}", "3"]
        );
    }

    #[test]
    fn json_seq_records_start_with_rs() {
        assert_eq!(
            split(
                Splitter::json_seq(100),
                &[b"\x1e{\"a\":1}\n\x1e", b"[1,\n2]\n\x1e\"x\"\n"]
            ),
            ["{\"a\":1}", "[1,\n2]", "\"x\""]
        );
    }

    #[test]
    fn a_record_over_the_limit_is_an_error_however_it_arrives() {
        let mut s = Splitter::lines(4);
        let mut out = Vec::new();
        assert_eq!(s.feed(b"1234\n", &mut out), Ok(()));
        assert_eq!(s.feed(b"12", &mut out), Ok(()));
        assert_eq!(s.feed(b"345", &mut out), Err(TooLong(4)));
        assert_eq!(out, [b"1234".to_vec()]);
        // The records before the one over the limit are kept.
        let mut s = Splitter::lines(4);
        let mut out = Vec::new();
        assert_eq!(s.feed(b"1\n2\n12345\n", &mut out), Err(TooLong(4)));
        assert_eq!(out, [b"1".to_vec(), b"2".to_vec()]);
        // White space around a record does not count.
        let mut s = Splitter::lines(4);
        let mut out = Vec::new();
        assert_eq!(s.feed(b"   1234   \n", &mut out), Ok(()));
        assert_eq!(out, [b"1234".to_vec()]);
    }
}

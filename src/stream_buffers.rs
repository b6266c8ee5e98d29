//! A connection's buffers for the HTTP client (ureq's `Buffers`), whose input grows while a
//! body streams in faster than it is read.
//!
//! Why: every connection starts with an input buffer the size of the largest response head
//! (a held long-poll is an open connection, and ureq's 128 KiB defaults would cost 256 KiB for
//! each followed resource). A stream then arrives in reads of that size: on a firehose of 1 KB
//! events, 32 KiB reads made a system call, a copy and a wake-up of the printer for every 32
//! events (BENCHMARKS.md). A read that fills all the room there is says more was waiting: the
//! buffer doubles for the next read, up to [`MAX_INPUT`]. Once the burst is over ([`QUIET`]
//! reads in a row that fill less than a quarter of the room, everything read used), it goes
//! back to its first size: a pooled connection or a held long-poll does not keep a burst's
//! buffer.
//!
//! The same contract as ureq's `LazyBuffers` (allocated on first use, the unread input moved to
//! the front when it is all used or fills more than half the buffer, at least 10 KiB of
//! scratch room).

use std::sync::Arc;

use bytes::Bytes;
use ureq::unversioned::transport::Buffers;

/// The most the input buffer grows to.
pub(crate) const MAX_INPUT: usize = 256 * 1024;
/// The scratch room `tmp_and_output` must offer (ureq's `LazyBuffers` guarantees the same).
const MIN_TMP: usize = 10 * 1024;
/// How many small reads in a row end a burst (hysteresis: a stream that is read a little
/// faster than it comes does not shrink and grow its buffer over and over).
pub(crate) const QUIET: u32 = 16;

/// What a buffer does before its next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resize {
    Keep,
    /// Doubles, up to [`MAX_INPUT`].
    Grow,
    /// Goes back to its first size (once what it holds is used).
    Shrink,
}

/// When the buffers here grow and when they go back, told read by read: a read that fills
/// all the room there is says more was waiting; [`QUIET`] reads in a row that fill less than
/// a quarter of it say the burst is over.
#[derive(Debug, Default)]
struct Growth {
    small_reads: u32,
}

impl Growth {
    fn after_read(&mut self, amount: usize, room: usize) -> Resize {
        if amount == room && amount > 0 {
            self.small_reads = 0;
            Resize::Grow
        } else if amount < room / 4 {
            self.small_reads = self.small_reads.saturating_add(1);
            if self.small_reads >= QUIET {
                Resize::Shrink
            } else {
                Resize::Keep
            }
        } else {
            self.small_reads = 0;
            Resize::Keep
        }
    }
}

/// The size a buffer of `len` bytes grows to.
fn grown(len: usize) -> usize {
    (len * 2).min(MAX_INPUT).max(len)
}

#[derive(Debug)]
pub(crate) struct StreamBuffers {
    /// The input buffer's size until it grows.
    input_size: usize,
    output_size: usize,
    /// Allocated on first use; `input[consumed..filled]` is what was read and not yet used.
    input: Vec<u8>,
    consumed: usize,
    filled: usize,
    output: Vec<u8>,
    growth: Growth,
    /// What the last read says the input buffer should do.
    resize: Resize,
    /// Whether the last `input_consume` used anything (ureq's `can_use_input`).
    progress: bool,
}

impl StreamBuffers {
    pub(crate) fn new(input_size: usize, output_size: usize) -> StreamBuffers {
        StreamBuffers {
            input_size: input_size.max(1),
            output_size: output_size.max(1),
            input: Vec::new(),
            consumed: 0,
            filled: 0,
            output: Vec::new(),
            growth: Growth::default(),
            resize: Resize::Keep,
            progress: false,
        }
    }

    fn ensure_allocation(&mut self) {
        if self.output.len() < self.output_size {
            self.output.resize(self.output_size, 0);
        }
        if self.input.len() < self.input_size {
            self.input.resize(self.input_size, 0);
        }
        if self.resize == Resize::Grow {
            self.resize = Resize::Keep;
            self.input.resize(grown(self.input.len()), 0);
        }
    }

    /// Moves the unread input to the front when it is all behind, or past the middle.
    fn shift(&mut self) {
        if self.consumed == 0 {
            return;
        }
        if self.consumed == self.filled {
            self.consumed = 0;
            self.filled = 0;
        } else if self.filled > self.input.len() / 2 {
            self.input.copy_within(self.consumed..self.filled, 0);
            self.filled -= self.consumed;
            self.consumed = 0;
        }
    }
}

impl Buffers for StreamBuffers {
    fn output(&mut self) -> &mut [u8] {
        self.ensure_allocation();
        &mut self.output
    }

    fn input(&self) -> &[u8] {
        &self.input[self.consumed..self.filled]
    }

    fn input_append_buf(&mut self) -> &mut [u8] {
        self.ensure_allocation();
        self.shift();
        &mut self.input[self.filled..]
    }

    fn input_appended(&mut self, amount: usize) {
        let room = self.input.len() - self.filled;
        // More than the room is a caller's bug; it must not make us read past the buffer.
        let amount = amount.min(room);
        self.resize = self.growth.after_read(amount, room);
        self.filled += amount;
    }

    fn input_consume(&mut self, amount: usize) {
        let amount = amount.min(self.filled - self.consumed);
        self.progress = amount > 0;
        self.consumed += amount;
        // A burst is over and all of it used: back to the first size.
        if self.consumed == self.filled && self.resize == Resize::Shrink {
            self.resize = Resize::Keep;
            self.consumed = 0;
            self.filled = 0;
            self.input.truncate(self.input_size);
            self.input.shrink_to_fit();
        }
    }

    fn tmp_and_output(&mut self) -> (&mut [u8], &mut [u8]) {
        self.ensure_allocation();
        self.shift();
        let free = self.input.len() - self.filled;
        if free < MIN_TMP {
            self.input.resize(self.filled + MIN_TMP, 0);
        }
        (&mut self.input[self.filled..], &mut self.output)
    }

    fn can_use_input(&self) -> bool {
        self.filled > self.consumed && self.progress
    }
}

/// A follower's own read buffer for a stream's body, sized as the connection's buffers are:
/// it doubles while reads fill it, up to [`MAX_INPUT`], and goes back to its first size after
/// [`QUIET`] small reads (a catch-up burst, then a quiet stream, keeps no large buffer).
///
/// Each read is handed out as [`Bytes`] that events can keep slices of, so a fast stream's
/// event bodies are not copied out of it one allocation each (BENCHMARKS.md). A buffer is read
/// into again once nothing holds a slice of it; while the printer still holds some, the next
/// read goes into another of at most [`POOL`] buffers, or a new one.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    /// The buffers reads went into, each shared with the slices of its last read still held.
    chunks: Vec<Arc<Vec<u8>>>,
    /// The size the next read gets.
    size: usize,
    /// The size of the buffer the last read went into: what a slice of that read keeps alive.
    room: usize,
    first: usize,
    growth: Growth,
    /// What the last read says the buffer should do, done before the next read (the bytes of
    /// the last read stay where they are until then).
    resize: Resize,
}

/// How many buffers a stream keeps for reuse: enough for the reads whose events wait in the
/// queue and among the printed ones handed back, beyond which a new buffer is allocated (and
/// the oldest kept one left to the slices that hold it). A read that fills less than a quarter
/// of its buffer, once the other reads are let go, gives the others back: a stream that goes
/// quiet after a burst keeps one.
const POOL: usize = 8;

/// A read, shared by the slices made of it: what keeps its buffer from being read into again.
struct Lease(Arc<Vec<u8>>, usize);

impl AsRef<[u8]> for Lease {
    fn as_ref(&self) -> &[u8] {
        &self.0[..self.1]
    }
}

impl ReadBuffer {
    pub(crate) fn new(first: usize) -> ReadBuffer {
        let first = first.max(1);
        ReadBuffer {
            chunks: Vec::new(),
            size: first,
            room: 0,
            first,
            growth: Growth::default(),
            resize: Resize::Keep,
        }
    }

    /// Reads once from `from`, into a buffer nothing else holds: the bytes read (empty at the
    /// end of the stream).
    pub(crate) fn read(&mut self, from: &mut dyn std::io::Read) -> std::io::Result<Bytes> {
        match std::mem::replace(&mut self.resize, Resize::Keep) {
            Resize::Grow => self.size = grown(self.size),
            Resize::Shrink if self.size > self.first => {
                self.size = self.first;
                // The burst's buffers are given back (those still held, once let go).
                self.chunks.truncate(1);
            }
            _ => {}
        }
        let free = match self
            .chunks
            .iter_mut()
            .position(|c| Arc::get_mut(c).is_some())
        {
            Some(i) => i,
            None => {
                if self.chunks.len() >= POOL {
                    self.chunks.remove(0);
                }
                self.chunks.push(Arc::new(Vec::new()));
                self.chunks.len() - 1
            }
        };
        let chunk = &mut self.chunks[free];
        let buf = Arc::get_mut(chunk).expect("a buffer nothing else holds");
        if buf.len() != self.size {
            buf.resize(self.size, 0);
            buf.shrink_to_fit();
        }
        self.room = buf.len();
        let n = from.read(buf)?.min(buf.len());
        self.resize = self.growth.after_read(n, self.room);
        let lease = Lease(Arc::clone(chunk), n);
        // A quiet moment, the other reads all let go (the printer has caught up): the other
        // buffers a burst kept are given back, so that a stream that then goes silent keeps
        // one. Not while the printer holds some: a stream read a little faster than it comes
        // has small reads among large ones, and would allocate a buffer for most reads.
        let others_free =
            (self.chunks.iter().enumerate()).all(|(i, c)| i == free || Arc::strong_count(c) == 1);
        if n < self.room / 4 && others_free {
            self.chunks.swap(0, free);
            self.chunks.truncate(1);
        }
        Ok(Bytes::from_owner(lease))
    }

    /// The size of the buffer the last read went into: the memory a slice of it keeps alive,
    /// however few bytes the read brought.
    pub(crate) fn room(&self) -> usize {
        self.room
    }
}

/// Copies `parts` (each `slice` of an item) that are slices of `piece` out of it, unless they
/// make up half of the `room` of the buffer it was read into at least ([`ReadBuffer::room`]):
/// a slice keeps that whole buffer from being reused or freed, whatever the size of the read,
/// so neither a server that pads a few bytes of events with a read's worth of comments nor one
/// that sends small events one read each (into a buffer grown by a burst) may make each
/// waiting event hold a buffer's worth of memory.
pub(crate) fn unpin<T>(
    parts: &mut [T],
    piece: &Bytes,
    room: usize,
    slice: impl Fn(&mut T) -> &mut Bytes,
) {
    let range = piece.as_ptr_range();
    let mut used = 0;
    for part in parts.iter_mut() {
        let bytes = slice(part);
        if range.contains(&bytes.as_ptr()) {
            used += bytes.len();
        }
    }
    if used * 2 < room {
        for part in parts {
            let bytes = slice(part);
            if range.contains(&bytes.as_ptr()) {
                *bytes = Bytes::copy_from_slice(bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends `bytes` as a transport's read would, within the room offered.
    fn read(buffers: &mut StreamBuffers, bytes: &[u8]) -> usize {
        let room = buffers.input_append_buf();
        let n = bytes.len().min(room.len());
        room[..n].copy_from_slice(&bytes[..n]);
        buffers.input_appended(n);
        n
    }

    #[test]
    fn input_grows_while_reads_fill_it_and_keeps_unread_bytes() {
        let mut b = StreamBuffers::new(1000, 100);
        let stream: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let (mut sent, mut got) = (0, Vec::new());
        while got.len() < stream.len() {
            sent += read(&mut b, &stream[sent..]);
            // The reader takes a part and leaves the rest for later, as a body reader does.
            let take = (b.input().len() * 2 / 3).max(1);
            got.extend_from_slice(&b.input()[..take]);
            b.input_consume(take);
        }
        assert_eq!(got, stream);
        assert_eq!(b.input.len(), MAX_INPUT, "grew to the most, no further");
    }

    #[test]
    fn a_grown_input_goes_back_to_its_first_size_once_the_burst_is_over() {
        let mut b = StreamBuffers::new(1000, 100);
        while b.input.len() < MAX_INPUT {
            read(&mut b, &vec![1; MAX_INPUT]);
            let n = b.input().len();
            b.input_consume(n);
        }
        // A few small reads are not yet the end of the burst.
        for _ in 1..QUIET {
            read(&mut b, &[2; 10]);
            b.input_consume(10);
        }
        assert_eq!(b.input.len(), MAX_INPUT);
        read(&mut b, &[3; 10]);
        // Not while something read is still unused.
        b.input_consume(5);
        assert_eq!(b.input.len(), MAX_INPUT);
        assert_eq!(b.input(), &[3; 5][..]);
        b.input_consume(5);
        assert_eq!(b.input.len(), 1000);
        assert!(b.input.capacity() < MAX_INPUT, "the memory is given back");
        // And it grows again for the next burst.
        read(&mut b, &vec![4; 5000]);
        b.input_consume(1000);
        read(&mut b, &vec![4; 5000]);
        assert!(b.input.len() > 1000);
    }

    #[test]
    fn small_reads_among_large_ones_reuse_the_pool_while_reads_are_held() {
        let mut r = ReadBuffer::new(1000);
        let mut burst: &[u8] = &[7; 4_000_000];
        for _ in 0..12 {
            r.read(&mut burst).unwrap();
        }
        // Two large reads and a small one, the printer holding the last four large reads (a
        // small read's events are copied out, see `unpin`).
        let mut held = std::collections::VecDeque::new();
        let mut allocated = 0;
        for i in 0..300 {
            let n = if i % 3 == 2 { 10_000 } else { 200_000 };
            let before: Vec<*const Vec<u8>> = r.chunks.iter().map(Arc::as_ptr).collect();
            let read = r.read(&mut &vec![1; n][..]).unwrap();
            allocated += usize::from(r.chunks.iter().any(|c| !before.contains(&Arc::as_ptr(c))));
            if n > 100_000 {
                held.push_back(read);
                if held.len() > 4 {
                    held.pop_front();
                }
            }
        }
        assert!(
            allocated <= POOL,
            "{allocated} buffers allocated for 300 reads"
        );
        // Let go, a small read gives the others back.
        held.clear();
        r.read(&mut &b"x"[..]).unwrap();
        assert_eq!(r.chunks.len(), 1);
    }

    #[test]
    fn a_read_buffer_grows_while_full_and_shrinks_once_quiet() {
        let mut r = ReadBuffer::new(1000);
        let mut burst: &[u8] = &[7; 1_000_000];
        let mut sizes = Vec::new();
        for _ in 0..12 {
            let read = r.read(&mut burst).unwrap();
            assert!(read.iter().all(|&b| b == 7));
            sizes.push(read.len());
        }
        assert_eq!(&sizes[..4], [1000, 2000, 4000, 8000], "doubles while full");
        assert_eq!(*sizes.iter().max().unwrap(), MAX_INPUT, "no further");
        let mut quiet: &[u8] = &[];
        for _ in 0..QUIET {
            assert!(r.read(&mut quiet).unwrap().is_empty());
        }
        r.read(&mut quiet).unwrap();
        assert_eq!(r.chunks.len(), 1);
        assert_eq!(r.chunks[0].len(), 1000, "back to its first size");
        assert!(r.chunks[0].capacity() < MAX_INPUT);
    }

    #[test]
    fn a_read_buffer_is_read_into_again_only_once_nothing_holds_it() {
        let mut r = ReadBuffer::new(4);
        let mut stream: &[u8] = b"aaaabbbbccccdddd";
        let first = r.read(&mut stream).unwrap();
        let kept = first.slice(1..3);
        drop(first);
        // A slice of the first read is held: the second (grown, as the first was full) goes
        // into another buffer, and the slice is not overwritten.
        let second = r.read(&mut stream).unwrap();
        assert_eq!((&kept[..], &second[..]), (&b"aa"[..], &b"bbbbcccc"[..]));
        assert_eq!(r.chunks.len(), 2);
        drop((kept, second));
        // Nothing held: a buffer is reused, none added.
        assert_eq!(&r.read(&mut stream).unwrap()[..], b"dddd");
        assert_eq!(r.chunks.len(), 2);
        // Held past the pool's size, the oldest buffers are left to their slices.
        let mut r = ReadBuffer::new(4);
        let held: Vec<Bytes> = (0..POOL + 3)
            .map(|_| r.read(&mut &b"eeee"[..]).unwrap())
            .collect();
        assert!(held.iter().all(|b| &b[..] == b"eeee"));
        assert_eq!(r.chunks.len(), POOL);
        // A small read (a quiet moment) gives the others back, held or not.
        drop(held);
        assert_eq!(&r.read(&mut &b"e"[..]).unwrap()[..], b"e");
        assert_eq!(r.chunks.len(), 1);
    }

    #[test]
    fn input_stays_small_when_reads_do_not_fill_it() {
        let mut b = StreamBuffers::new(1000, 100);
        for _ in 0..100 {
            read(&mut b, &[7; 300]);
            let n = b.input().len();
            b.input_consume(n);
        }
        assert_eq!(b.input.len(), 1000);
        assert!(!b.can_use_input());
    }

    #[test]
    fn scratch_room_is_offered_even_with_input_held() {
        let mut b = StreamBuffers::new(1000, 100);
        read(&mut b, &[1; 900]);
        let (tmp, output) = b.tmp_and_output();
        assert!(tmp.len() >= MIN_TMP);
        assert_eq!(output.len(), 100);
        assert_eq!(b.input(), &[1; 900][..]);
    }
}

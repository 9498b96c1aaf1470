//! The one bounded line reader, and opening `scan`'s inputs: standard input, plain files and
//! gzip-compressed rotations (`kern.log.2.gz`).
//!
//! Three ways in, one set of line rules:
//! - `LineBuffer` is pushed the bytes of a stream as they come (the file and journal
//!   sources read in chunks and must know how many bytes each line used, for their cursors).
//!   It hands out `Piece`s: a complete line without its `\n`, or the size of a line that was
//!   too long. A partial last line waits for its newline.
//! - [`for_each_line`] pulls a whole [`BufRead`] through a `LineBuffer`, also strips a `\r`
//!   before the `\n`, and hands out a last line without a newline: the line rules, which
//!   [`for_each_line_in`] (a slice held whole, `scan`'s blocks) is tested to follow.
//! - [`Blocks`] cuts a stream into blocks of whole lines for [`for_each_line_in`] to split on
//!   other threads (`scan`): the same lines, in the same order.
//!
//! Lines are bytes (no UTF-8 requirement). Memory stays bounded whatever the input: a line
//! longer than the limit is counted and skipped without being buffered whole (a 1 GiB line
//! without a newline costs at most the limit). Lines that fit in the chunk being fed are
//! handed over without a copy.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

/// The longest line handed out (by the sources, and by `scan` through [`for_each_line_in`]): 1 MiB.
pub const MAX_LINE_LEN: usize = 1 << 20;

/// Open `path` for reading lines: `-` is standard input, `*.gz` is decompressed (all members,
/// as `zcat` does). Errors name the path.
pub fn open_input(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    open_input_with(path, |raw| raw)
}

/// [`open_input`], with `wrap` put around the raw bytes (before decompression): `scan`'s
/// progress bar counts the bytes of the file this way, so that its ETA holds for `.gz` too.
pub fn open_input_with(
    path: &Path,
    wrap: impl FnOnce(Box<dyn Read + Send>) -> Box<dyn Read + Send>,
) -> io::Result<Box<dyn BufRead + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufReader::with_capacity(
            64 * 1024,
            wrap(Box::new(io::stdin())),
        )));
    }
    let file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let raw = wrap(Box::new(file));
    if is_gzip(path) {
        Ok(Box::new(BufReader::with_capacity(
            64 * 1024,
            MultiGzDecoder::new(BufReader::new(raw)),
        )))
    } else {
        Ok(Box::new(BufReader::with_capacity(64 * 1024, raw)))
    }
}

/// Whether `path` names a gzip-compressed file (`*.gz`), which is read decompressed.
pub fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// A line as handed out: without the `\r` of a `\r\n`, and `None` when it is then longer than
/// `max_len` (skipped and counted). The rule both [`for_each_line`] and [`for_each_line_in`]
/// apply to each line.
fn kept(line: &[u8], max_len: usize) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (line.len() <= max_len).then_some(line)
}

/// One piece of a byte stream cut into lines by [`LineBuffer`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// A complete line, without its newline; it used `len + 1` bytes of the stream.
    Line(&'a [u8]),
    /// A line longer than the limit ended (or the stream did, see [`LineBuffer::finish`]); it
    /// used `consumed` bytes (newline included).
    Long { consumed: u64 },
}

/// Cuts a byte stream into lines with bounded memory: a partial last line waits for its
/// newline (at most `max_len` bytes of it are held, [`MAX_LINE_LEN`] by default); a longer
/// line is dropped while it streams by and reported once, as [`Piece::Long`], when its newline
/// arrives.
#[derive(Debug)]
pub(crate) struct LineBuffer {
    /// The longest line handed out, in bytes (without the newline).
    max_len: usize,
    pending: Vec<u8>,
    /// Bytes of the over-long line being skipped, when one is.
    skipping: Option<u64>,
}

impl Default for LineBuffer {
    fn default() -> Self {
        LineBuffer::new(MAX_LINE_LEN)
    }
}

impl LineBuffer {
    /// A cutter that hands out lines of at most `max_len` bytes.
    pub(crate) fn new(max_len: usize) -> LineBuffer {
        LineBuffer {
            max_len,
            pending: Vec::new(),
            skipping: None,
        }
    }

    /// Feed the next bytes of the stream; complete pieces go to `emit`, in order.
    pub(crate) fn feed(&mut self, mut data: &[u8], emit: &mut dyn FnMut(Piece<'_>)) {
        while !data.is_empty() {
            let newline = memchr::memchr(b'\n', data);
            if let Some(skipped) = self.skipping {
                match newline {
                    Some(i) => {
                        self.skipping = None;
                        emit(Piece::Long {
                            consumed: skipped + i as u64 + 1,
                        });
                        data = &data[i + 1..];
                    }
                    None => {
                        self.skipping = Some(skipped + data.len() as u64);
                        return;
                    }
                }
                continue;
            }
            match newline {
                Some(i) if self.pending.len() + i > self.max_len => {
                    let consumed = (self.pending.len() + i + 1) as u64;
                    self.pending.clear();
                    emit(Piece::Long { consumed });
                    data = &data[i + 1..];
                }
                Some(i) if self.pending.is_empty() => {
                    emit(Piece::Line(&data[..i]));
                    data = &data[i + 1..];
                }
                Some(i) => {
                    self.pending.extend_from_slice(&data[..i]);
                    emit(Piece::Line(&self.pending));
                    self.pending.clear();
                    data = &data[i + 1..];
                }
                None if self.pending.len() + data.len() > self.max_len => {
                    self.skipping = Some((self.pending.len() + data.len()) as u64);
                    self.pending.clear();
                    return;
                }
                None => {
                    self.pending.extend_from_slice(data);
                    return;
                }
            }
        }
    }

    /// Bytes of the stream held or skipped after the last complete piece.
    pub(crate) fn unfinished(&self) -> u64 {
        self.skipping.unwrap_or(self.pending.len() as u64)
    }

    /// The unterminated last line, when the stream is known to have ended (a rotated file
    /// the writer left); `None` when there is none or it was too long.
    pub(crate) fn take_partial(&mut self) -> Option<Vec<u8>> {
        self.skipping = None;
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }

    /// The stream has ended: hand out its unterminated last line, or report the over-long
    /// line it ended in as [`Piece::Long`]; then the buffer is empty.
    pub(crate) fn finish(&mut self, emit: &mut dyn FnMut(Piece<'_>)) {
        if let Some(consumed) = self.skipping.take() {
            emit(Piece::Long { consumed });
        } else if !self.pending.is_empty() {
            emit(Piece::Line(&self.pending));
            self.pending.clear();
        }
    }

    /// Forget everything (the stream restarts, e.g. a truncated file).
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
        self.skipping = None;
    }
}

/// [`for_each_line`] over a slice held whole (a block of [`Blocks`]): the same lines and the
/// same count of lines skipped, from one newline search run over the slice
/// (`memchr_iter`) instead of a search started per line through a `LineBuffer`
/// (about 3 % of a scan's CPU time).
pub fn for_each_line_in(block: &[u8], max_len: usize, mut f: impl FnMut(&[u8])) -> u64 {
    let mut skipped = 0u64;
    let mut take = |line: &[u8]| match kept(line, max_len) {
        Some(line) => f(line),
        None => skipped += 1,
    };
    let mut start = 0;
    for newline in memchr::memchr_iter(b'\n', block) {
        take(&block[start..newline]);
        start = newline + 1;
    }
    if start < block.len() {
        take(&block[start..]);
    }
    skipped
}

/// Call `f` with every line of `reader` (without its `\n` / `\r\n`; a last line without a
/// newline counts). Lines longer than `max_len` bytes are skipped; returns how many were.
pub fn for_each_line(
    mut reader: impl BufRead,
    max_len: usize,
    mut f: impl FnMut(&[u8]),
) -> io::Result<u64> {
    // +1: room for the `\r` of a `\r\n`, checked again once it is stripped.
    let mut lines = LineBuffer::new(max_len.saturating_add(1));
    let mut skipped = 0u64;
    let mut take = |piece: Piece<'_>| match piece {
        Piece::Line(line) => match kept(line, max_len) {
            Some(line) => f(line),
            None => skipped += 1,
        },
        Piece::Long { .. } => skipped += 1,
    };
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            lines.finish(&mut take);
            return Ok(skipped);
        }
        let n = buf.len();
        lines.feed(buf, &mut take);
        reader.consume(n);
    }
}

/// Cuts a stream into blocks of whole lines, about `block` bytes each, handed out one at a
/// time by [`Blocks::next`], for [`for_each_line_in`] to split elsewhere (on another thread):
/// every block ends with a newline but the stream's last, so splitting each block yields the
/// lines `for_each_line(reader, max_len, ..)` would, in order. A line longer than a line can be
/// (`max_len`, plus a `\r`) is dropped here as it streams by and counted ([`Blocks::skipped`]),
/// so a block never holds one; the blocks' own counts plus this one are `for_each_line`'s
/// count.
pub struct Blocks<R> {
    reader: R,
    /// Bytes of whole lines that make a block.
    block: usize,
    /// The longest line kept: `max_len` and a `\r`.
    cap: usize,
    /// What a buffer starts with; it grows if a block needs more.
    initial: usize,
    /// `buf[..filled]` is the data; `buf[filled..]` is initialised room to read into.
    buf: Vec<u8>,
    filled: usize,
    /// Inside a line too long to keep.
    skipping: bool,
    skipped: u64,
    /// A read error met after whole lines, which went out first; [`Blocks::next`] gives it next.
    error: Option<io::Error>,
    done: bool,
}

/// Bytes asked of the reader at a time.
const READ: usize = 128 * 1024;

impl<R: Read> Blocks<R> {
    /// Blocks of about `block` bytes of `reader`'s lines of at most `max_len` bytes.
    pub fn new(reader: R, block: usize, max_len: usize) -> Blocks<R> {
        let block = block.max(1);
        Blocks {
            reader,
            block,
            // As for_each_line: a line of up to max_len bytes and its `\r`.
            cap: max_len.saturating_add(1),
            initial: block.min(8 << 20) + READ,
            buf: Vec::new(),
            filled: 0,
            skipping: false,
            skipped: 0,
            error: None,
            done: false,
        }
    }

    /// Lines dropped so far for being too long.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The next block, or `None` at the end of the stream. `fresh` is the buffer that goes on
    /// holding the stream once a block is handed out: of any length and content (the caller
    /// hands back blocks it is done with, so that no block faults in new pages); what it holds
    /// is overwritten, and its initialised length is read into without being zeroed again
    /// (zeroing every buffer before each read cost a pass over the input). A read error ends
    /// the stream: the whole lines before it are handed out first, the unterminated one is not.
    pub fn next(&mut self, fresh: Vec<u8>) -> io::Result<Option<Vec<u8>>> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.done {
            return Ok(None);
        }
        loop {
            let filled = self.filled;
            if self.buf.len() < filled + READ {
                self.buf.resize(filled + READ, 0);
            }
            let n = loop {
                match self.reader.read(&mut self.buf[filled..filled + READ]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.done = true;
                        let whole =
                            memchr::memrchr(b'\n', &self.buf[..filled]).map_or(0, |i| i + 1);
                        if whole == 0 {
                            return Err(e);
                        }
                        self.error = Some(e);
                        return Ok(Some(self.hand_out(fresh, whole)));
                    }
                }
            };
            if n == 0 {
                self.done = true;
                return Ok((filled > 0).then(|| self.hand_out(fresh, filled)));
            }
            let read_from = filled;
            self.filled += n;
            if self.skipping {
                // Still inside a line too long to keep: drop it up to its newline.
                match memchr::memchr(b'\n', &self.buf[read_from..self.filled]) {
                    Some(i) => {
                        self.skipping = false;
                        self.buf
                            .copy_within(read_from + i + 1..self.filled, read_from);
                        self.filled -= i + 1;
                    }
                    None => {
                        self.filled = read_from;
                        continue;
                    }
                }
            }
            let whole = memchr::memrchr(b'\n', &self.buf[..self.filled]).map_or(0, |i| i + 1);
            if self.filled - whole > self.cap {
                // The line being read is too long: drop it, hand out the whole lines before it.
                self.skipped += 1;
                self.skipping = true;
                self.filled = whole;
                if whole > 0 {
                    return Ok(Some(self.hand_out(fresh, whole)));
                }
            } else if whole >= self.block {
                return Ok(Some(self.hand_out(fresh, whole)));
            }
        }
    }

    /// `buf[..whole]` as a block; `fresh` takes over the rest of the data.
    fn hand_out(&mut self, mut fresh: Vec<u8>, whole: usize) -> Vec<u8> {
        fresh.reserve(self.initial.saturating_sub(fresh.len()));
        let rest = self.filled - whole;
        if fresh.len() < rest {
            fresh.resize(rest, 0);
        }
        fresh[..rest].copy_from_slice(&self.buf[whole..self.filled]);
        let mut out = std::mem::replace(&mut self.buf, fresh);
        out.truncate(whole);
        self.filled = rest;
        out
    }
}

/// A reader that hands out at most `step` bytes per read (tests of what reads in chunks).
#[cfg(test)]
pub(crate) struct Trickle<'a> {
    pub data: &'a [u8],
    pub step: usize,
}

#[cfg(test)]
impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.data.len().min(self.step).min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read, Write};

    use super::*;

    #[test]
    fn blocks_split_into_the_same_lines_as_the_stream() {
        let mut rng = crate::test_rng::Rng(0x2545_f491_4f6c_dd1d);
        let mut rand = |n: usize| rng.below(n);
        for round in 0..400 {
            let max_len = 1 + rand(12);
            let mut input = Vec::new();
            for _ in 0..rand(40) {
                let len = rand(3 * max_len + 3);
                input.extend((0..len).map(|i| b'a' + (i % 26) as u8));
                if rand(6) == 0 {
                    input.push(b'\r');
                }
                match rand(4) {
                    0 => input.extend_from_slice(b"\r\n"),
                    _ => input.push(b'\n'),
                }
            }
            if rand(2) == 0 {
                input.extend_from_slice(&b"tail-without-newline\r"[..rand(22)]);
            }
            let mut expected = Vec::new();
            let expected_skipped =
                for_each_line(Cursor::new(&input), max_len, |l| expected.push(l.to_vec())).unwrap();
            let mut whole = Vec::new();
            let whole_skipped = for_each_line_in(&input, max_len, |l| whole.push(l.to_vec()));
            assert_eq!(
                (&whole, whole_skipped),
                (&expected, expected_skipped),
                "round {round}: {input:?}"
            );
            let (block, step) = (1 + rand(30), 1 + rand(50));
            let mut got = Vec::new();
            // Buffers handed back as the caller recycles them: of any length, full of junk.
            let junk = rand(3);
            let mut fresh_count = 0usize;
            let mut fresh = || {
                fresh_count += 1;
                match junk {
                    0 => Vec::new(),
                    1 => vec![b'\n'; fresh_count % 7],
                    _ => vec![b'#'; 64 + fresh_count % 200],
                }
            };
            let mut blocks = Blocks::new(Trickle { data: &input, step }, block, max_len);
            while let Some(b) = blocks.next(fresh()).unwrap() {
                assert!(!b.is_empty(), "round {round}: an empty block");
                assert!(b.len() <= block + READ);
                got.push(b);
            }
            assert!(
                blocks.next(fresh()).unwrap().is_none(),
                "round {round}: past the end"
            );
            let mut skipped = blocks.skipped();
            let mut lines = Vec::new();
            let (mut lines_in, mut skipped_in) = (Vec::new(), blocks.skipped());
            for (i, b) in got.iter().enumerate() {
                if i + 1 < got.len() {
                    assert_eq!(
                        b.last(),
                        Some(&b'\n'),
                        "round {round}: block {i} cut a line"
                    );
                }
                skipped +=
                    for_each_line(Cursor::new(b), max_len, |l| lines.push(l.to_vec())).unwrap();
                skipped_in += for_each_line_in(b, max_len, |l| lines_in.push(l.to_vec()));
            }
            assert_eq!(lines, expected, "round {round}: {input:?}");
            assert_eq!(skipped, expected_skipped, "round {round}: {input:?}");
            assert_eq!(lines_in, expected, "round {round}: {input:?}");
            assert_eq!(skipped_in, expected_skipped, "round {round}: {input:?}");
        }
    }

    fn lines(input: &[u8], max_len: usize, capacity: usize) -> (Vec<Vec<u8>>, u64) {
        let mut out = Vec::new();
        let reader = BufReader::with_capacity(capacity, Cursor::new(input.to_vec()));
        let skipped = for_each_line(reader, max_len, |l| out.push(l.to_vec())).unwrap();
        (out, skipped)
    }

    #[test]
    fn splits_and_strips() {
        for capacity in [1, 2, 3, 7, 64 * 1024] {
            let (out, skipped) = lines(b"a\r\nbb\n\nc\xff\0d\nlast", 100, capacity);
            assert_eq!(
                out,
                vec![&b"a"[..], b"bb", b"", b"c\xff\0d", b"last"],
                "{capacity}"
            );
            assert_eq!(skipped, 0);
        }
    }

    #[test]
    fn long_lines_are_skipped_with_bounded_memory() {
        for capacity in [1, 4, 5, 64] {
            let (out, skipped) = lines(b"1234\n12345\n123456\nok\n1234567", 5, capacity);
            assert_eq!(out, vec![&b"1234"[..], b"12345", b"ok"], "{capacity}");
            assert_eq!(skipped, 2, "{capacity}");
            let (out, _) = lines(b"12345\r\n", 5, capacity);
            assert_eq!(out, vec![&b"12345"[..]]);
        }
        // A 3 MiB line among normal ones, read in 8 KiB chunks.
        let mut input = b"first\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 3 << 20));
        input.extend_from_slice(b"\nsecond\n");
        let (out, skipped) = lines(&input, MAX_LINE_LEN, 8 * 1024);
        assert_eq!(
            (out, skipped),
            (vec![b"first".to_vec(), b"second".to_vec()], 1)
        );
    }

    fn cut(chunks: &[&[u8]]) -> (Vec<String>, LineBuffer) {
        let mut lb = LineBuffer::default();
        let mut out = Vec::new();
        for c in chunks {
            lb.feed(c, &mut |p| match p {
                Piece::Line(l) => out.push(String::from_utf8_lossy(l).into_owned()),
                Piece::Long { consumed } => out.push(format!("<long {consumed}>")),
            });
        }
        (out, lb)
    }

    #[test]
    fn lines_across_chunks_and_partial_tail() {
        let (out, lb) = cut(&[b"a\nb", b"c\n\nd", b"e"]);
        assert_eq!(out, ["a", "bc", "",]);
        assert_eq!(lb.unfinished(), 2);
    }

    #[test]
    fn line_buffer_skips_long_lines_with_bounded_memory() {
        let big = vec![b'x'; 300_000];
        let mut chunks: Vec<&[u8]> = vec![b"ok\n"];
        for _ in 0..4 {
            chunks.push(&big);
        }
        chunks.push(b"\nafter\n");
        let (out, lb) = cut(&chunks);
        assert_eq!(out, ["ok", "<long 1200001>", "after"]);
        assert_eq!(lb.unfinished(), 0);
        assert!(lb.pending.capacity() <= MAX_LINE_LEN + 300_000);
        // Exactly MAX_LINE_LEN bytes is still a line; one more is not.
        let exact = vec![b'y'; MAX_LINE_LEN];
        let (out, _) = cut(&[&exact, b"\n"]);
        assert_eq!(out[0].len(), MAX_LINE_LEN);
        let over = vec![b'y'; MAX_LINE_LEN + 1];
        let (out, _) = cut(&[&over[..10], &over[10..], b"\n"]);
        assert_eq!(out, [format!("<long {}>", MAX_LINE_LEN + 2)]);
    }

    #[test]
    fn finish_hands_out_the_unterminated_line_or_reports_the_long_one() {
        let mut out = Vec::new();
        let mut lb = LineBuffer::new(5);
        let mut push = |p: Piece<'_>| match p {
            Piece::Line(l) => out.push(String::from_utf8_lossy(l).into_owned()),
            Piece::Long { consumed } => out.push(format!("<long {consumed}>")),
        };
        lb.feed(b"ab\ncd", &mut push);
        lb.finish(&mut push);
        lb.finish(&mut push);
        lb.feed(b"1234567", &mut push);
        lb.finish(&mut push);
        assert_eq!(out, ["ab", "cd", "<long 7>"]);
        assert_eq!(lb.unfinished(), 0);
    }

    #[test]
    fn an_unterminated_last_line_over_the_limit_is_skipped() {
        // Exactly one byte over, without `\r`: held as room for a `\r`, then refused.
        for capacity in [1, 3, 64] {
            let (out, skipped) = lines(b"ok\n123456", 5, capacity);
            assert_eq!((out, skipped), (vec![b"ok".to_vec()], 1), "{capacity}");
            let (out, skipped) = lines(b"ok\n12345\r", 5, capacity);
            assert_eq!(
                (out, skipped),
                (vec![b"ok".to_vec(), b"12345".to_vec()], 0),
                "{capacity}"
            );
        }
    }

    /// A reader that fails if asked to hold more than it should: it never is, since
    /// `for_each_line` consumes as it goes.
    #[test]
    fn reader_errors_propagate() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let err = for_each_line(BufReader::new(Failing), 10, |_| {}).unwrap_err();
        assert!(err.to_string().contains("disk on fire"));

        // Blocks: the whole lines read before the error come first, then the error, then the
        // end; the unterminated line is lost.
        let mut blocks = Blocks::new(
            Cursor::new(b"a\nb\npart".to_vec()).chain(Failing),
            1 << 20,
            10,
        );
        assert_eq!(blocks.next(Vec::new()).unwrap().unwrap(), b"a\nb\n");
        let err = blocks.next(Vec::new()).unwrap_err();
        assert!(err.to_string().contains("disk on fire"));
        assert!(blocks.next(Vec::new()).unwrap().is_none());
        // An error before any whole line is the first answer.
        let mut blocks = Blocks::new(Cursor::new(b"part".to_vec()).chain(Failing), 1 << 20, 10);
        assert!(blocks.next(Vec::new()).is_err());
        assert!(blocks.next(Vec::new()).unwrap().is_none());
    }

    #[test]
    fn opens_plain_gzip_and_names_missing_paths() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("kern.log");
        std::fs::write(&plain, b"one\ntwo\n").unwrap();
        let gz = dir.path().join("kern.log.2.gz");
        // Two gzip members, as concatenated rotations give: both are read.
        let mut bytes = Vec::new();
        for part in [&b"three\n"[..], b"four\n"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            bytes.extend(e.finish().unwrap());
        }
        std::fs::write(&gz, bytes).unwrap();
        let mut seen = Vec::new();
        for path in [&plain, &gz] {
            for_each_line(open_input(path).unwrap(), MAX_LINE_LEN, |l| {
                seen.push(l.to_vec())
            })
            .unwrap();
        }
        assert_eq!(
            seen,
            vec![
                b"one".to_vec(),
                b"two".to_vec(),
                b"three".to_vec(),
                b"four".to_vec()
            ]
        );
        let missing = dir.path().join("nope.log");
        let err = open_input(&missing).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("nope.log"), "{err}");
    }
}

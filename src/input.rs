//! Reading lines from files for `scan` and the file source: standard input, plain files and
//! gzip-compressed rotations (`kern.log.2.gz`), as byte lines.
//!
//! In: a path. Out: each line as `&[u8]` (no UTF-8 requirement; `\n` and `\r\n` stripped).
//!
//! Memory stays bounded whatever the input: a line longer than the limit is counted and skipped
//! without being buffered whole (a 1 GiB line without a newline costs at most the limit).
//! Lines that fit in the reader's buffer are handed over without a copy.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use memchr::memchr;

/// Default longest line [`for_each_line`] passes on: 1 MiB.
pub const MAX_LINE_LEN: usize = 1 << 20;

/// Open `path` for reading lines: `-` is standard input, `*.gz` is decompressed (all members,
/// as `zcat` does). Errors name the path.
pub fn open_input(path: &Path) -> io::Result<Box<dyn BufRead>> {
    open_input_with(path, |raw| raw)
}

/// [`open_input`], with `wrap` put around the raw bytes (before decompression): `scan`'s
/// progress bar counts the bytes of the file this way, so that its ETA holds for `.gz` too.
pub fn open_input_with(
    path: &Path,
    wrap: impl FnOnce(Box<dyn Read>) -> Box<dyn Read>,
) -> io::Result<Box<dyn BufRead>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufReader::with_capacity(
            64 * 1024,
            wrap(Box::new(io::stdin())),
        )));
    }
    let file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let raw = wrap(Box::new(file));
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(BufReader::with_capacity(
            64 * 1024,
            MultiGzDecoder::new(BufReader::new(raw)),
        )))
    } else {
        Ok(Box::new(BufReader::with_capacity(64 * 1024, raw)))
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Call `f` with every line of `reader` (without its `\n` / `\r\n`; a last line without a
/// newline counts). Lines longer than `max_len` bytes are skipped; returns how many were.
pub fn for_each_line(
    mut reader: impl BufRead,
    max_len: usize,
    mut f: impl FnMut(&[u8]),
) -> io::Result<u64> {
    let mut pending: Vec<u8> = Vec::new();
    let mut skipping = false;
    let mut skipped = 0u64;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            if skipping {
                skipped += 1;
            } else if !pending.is_empty() {
                f(strip_cr(&pending));
            }
            return Ok(skipped);
        }
        match memchr(b'\n', buf) {
            Some(nl) => {
                if skipping {
                    skipping = false;
                    skipped += 1;
                } else if pending.is_empty() {
                    let line = strip_cr(&buf[..nl]);
                    if line.len() > max_len {
                        skipped += 1;
                    } else {
                        f(line);
                    }
                } else {
                    pending.extend_from_slice(&buf[..nl]);
                    let line = strip_cr(&pending);
                    if line.len() > max_len {
                        skipped += 1;
                    } else {
                        f(line);
                    }
                    pending.clear();
                }
                reader.consume(nl + 1);
            }
            None => {
                let n = buf.len();
                if !skipping {
                    // +1: room for a `\r` that belongs to a `\r\n`.
                    if pending.len() + n > max_len.saturating_add(1) {
                        skipping = true;
                        pending = Vec::new();
                    } else {
                        pending.extend_from_slice(buf);
                    }
                }
                reader.consume(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read, Write};

    use super::*;

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

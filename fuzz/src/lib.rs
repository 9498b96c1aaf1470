//! The fuzz harness: one function per cargo-fuzz target, each taking the raw fuzz input.
//!
//! They live in this library, not in the `fuzz_targets/` files, so that the main crate's
//! `tests/fuzz_corpus.rs` replays the checked-in corpus (`fuzz/corpus/TARGET/`) and every past
//! crash (`fuzz/regressions/TARGET/`) through the very same code with a stable toolchain, on
//! every `cargo test`, without libFuzzer.
//!
//! Each function panics when an invariant breaks; a panic is what libFuzzer reports as a crash.
//!
//! | target | what goes in | what must hold |
//! | --- | --- | --- |
//! | [`parse_line`] | a record of any source kind, or a fuzzed body behind each header form | no panic; the same record parses the same way twice |
//! | [`config_load`] | TOML text | no panic; an error names the file |
//! | [`file_cursor`] | a stored cursor (or its text) and the files it points into | no panic, no I/O error; records are lines; a pass resumed from the saved cursor reads nothing again |

use std::io::Write as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use portwarden::config::{Config, LogConfig, LogPrefix};
use portwarden::parse::{ParseContext, Parser};
use portwarden::record::{Record, SourceKind};
use portwarden::source::file::FileSource;
use portwarden::source::{Cursor, FilePosition, Source};

/// The header forms the body is put behind (mode bytes 3 and up of [`parse_line`]).
const HEADERS: [(SourceKind, &str); 10] = [
    (SourceKind::Kmsg, "4,479,635715659,-;portwarden: "),
    (SourceKind::File, "4,479,635715659,-;portwarden: "),
    (
        SourceKind::File,
        "2026-11-24T23:06:53.947768+00:00 vm kernel: [  635.715659] portwarden: ",
    ),
    (SourceKind::File, "Nov 24 23:06:53 vm kernel: portwarden: "),
    (SourceKind::File, "[  635.715659] portwarden: "),
    (SourceKind::File, "[Tue Nov 24 23:06:53 2026] portwarden: "),
    (
        SourceKind::File,
        "kern  :warn  : [  635.715659] portwarden: ",
    ),
    (
        SourceKind::File,
        "<4>1 2026-11-24T23:06:53.947768+00:00 vm kernel - - - [  635.715659] portwarden: ",
    ),
    (
        SourceKind::File,
        "1 2026-11-24T23:06:53.947768+00:00 vm kernel - - [origin ip=\"10.0.0.1\"] portwarden: ",
    ),
    (
        SourceKind::Journal,
        r#"{"__REALTIME_TIMESTAMP":"1795561613947768","_TRANSPORT":"kernel","MESSAGE":"portwarden: "#,
    ),
];

fn fixed_parser() -> Parser {
    let ts = |s: &str| s.parse::<Timestamp>().unwrap_or(Timestamp::UNIX_EPOCH);
    let ctx = ParseContext {
        now: ts("2026-11-24T23:30:00Z"),
        tz: TimeZone::UTC,
        boot_time: ts("2026-11-24T22:56:18.232109Z"),
    };
    let log = LogConfig {
        prefixes: vec![LogPrefix::default()],
        accept_untrusted: false,
    };
    Parser::new(&log, ctx)
}

/// The line parser. First byte: 0, 1, 2 hand the rest as a raw record of kind kmsg, journal,
/// file; 3 and up put the rest as the body behind one of [`HEADERS`] (so the body parser is
/// reached from every header form; the journal form closes its JSON string).
pub fn parse_line(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (kind, line) = match mode {
        0 => (SourceKind::Kmsg, rest.to_vec()),
        1 => (SourceKind::Journal, rest.to_vec()),
        2 => (SourceKind::File, rest.to_vec()),
        m => {
            let (kind, header) = HEADERS[usize::from(m - 3) % HEADERS.len()];
            let mut line = header.as_bytes().to_vec();
            line.extend_from_slice(rest);
            if kind == SourceKind::Journal {
                line.extend_from_slice(b"\"}");
            }
            (kind, line)
        }
    };
    let mut parser = fixed_parser();
    let record = Record { kind, bytes: &line };
    let first = parser.parse(record);
    let again = parser.parse(record);
    assert_eq!(
        format!("{first:?}"),
        format!("{again:?}"),
        "parsing is not a function of the record"
    );
    if let Ok(probe) = first {
        // A probe that came out must be printable (the summary and the store print it).
        let _ = format!("{probe:?} {}", probe.src);
    }
}

/// The config loader: any text gives a config or an error naming the file, never a panic.
pub fn config_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/portwarden/fuzz.toml");
    if let Err(e) = Config::from_toml(text, path) {
        let shown = e.to_string();
        assert!(
            shown.contains("/etc/portwarden/fuzz.toml"),
            "an error that does not name the file: {shown}"
        );
    }
}

/// A scratch directory kept for the whole fuzzing run (on tmpfs when there is one: each
/// input writes files).
fn scratch() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let made = if shm.is_dir() {
            tempfile::Builder::new()
                .prefix("portwarden-fuzz-")
                .tempdir_in(shm)
        } else {
            tempfile::Builder::new()
                .prefix("portwarden-fuzz-")
                .tempdir()
        };
        made.unwrap_or_else(|e| panic!("no scratch directory for the fuzz harness: {e}"))
    })
    .path()
}

/// Remove the scratch directory (its `TempDir` lives in a static and is never dropped): a
/// process that is done with [`file_cursor`] calls this so that nothing is left in /dev/shm.
pub fn remove_scratch() {
    let _ = std::fs::remove_dir_all(scratch());
}

fn write_file(path: &Path, bytes: &[u8]) {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all(bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn identity(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.dev(), m.ino())
}

fn read_all(src: &mut FileSource) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    src.read_available(&mut |r| out.push(r.bytes.to_vec()))
        .unwrap_or_else(|e| panic!("a pass over regular files failed: {e}"));
    out
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, slot) in b.iter_mut().enumerate() {
        *slot = data.get(at + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

/// The file source's cursor recovery. Byte 0 picks the case:
/// * bit 0 set: the rest is a stored cursor's text ([`Cursor::from_store`]): it is an error or
///   a cursor that round-trips through [`Cursor::to_store`];
/// * else the input is `flags, offset (8 bytes), head_len (4), head_hash (8), files`, the files
///   split at the first 0xFF byte into the file at the path and the rotated `NAME.1` beside it
///   (none without a 0xFF). Bit 1 points the cursor at the rotated file (else at the current
///   one), bit 2 uses the true first-line hash of the file pointed at (so a matching cursor is
///   reached), bit 3 keeps the offset as given (else modulo the file's length + 2), bit 4 also
///   lists the rotated file among the cursor's lingering files.
///
/// What must hold: no panic and no I/O error; no record holds a newline; the records come to at
/// most the bytes written; the saved cursor's offset lies within the file at the path; a new
/// source opened from the saved cursor reads nothing again.
pub fn file_cursor(data: &[u8]) {
    let Some(&flags) = data.first() else {
        return;
    };
    if flags & 1 == 1 {
        if let Ok(text) = std::str::from_utf8(&data[1..])
            && let Ok(cursor) = Cursor::from_store(text)
        {
            let again = Cursor::from_store(&cursor.to_store());
            assert_eq!(again.ok(), Some(cursor), "a cursor does not round-trip");
        }
        return;
    }
    let files = data.get(21..).unwrap_or(&[]);
    let (current, rotated) = match files.iter().position(|&b| b == 0xFF) {
        Some(i) => (&files[..i], Some(&files[i + 1..])),
        None => (files, None),
    };
    let dir = scratch();
    let path: PathBuf = dir.join("kern.log");
    let old: PathBuf = dir.join("kern.log.1");
    write_file(&path, current);
    match rotated {
        Some(bytes) => write_file(&old, bytes),
        None => {
            let _ = std::fs::remove_file(&old);
        }
    }
    let pointed: (&Path, &[u8]) = match (flags & 2 == 2, rotated) {
        (true, Some(bytes)) => (&old, bytes),
        _ => (&path, current),
    };
    let (dev, ino) = identity(pointed.0);
    let mut offset = u64_at(data, 1);
    if flags & 8 == 0 {
        offset %= pointed.1.len() as u64 + 2;
    }
    let mut head_len = u64_at(data, 9) as u32;
    let mut head_hash = u64_at(data, 13);
    if flags & 4 == 4 {
        let text = pointed.1;
        let end = text
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| i + 1)
            .min(portwarden::source::file::HEAD_MAX);
        head_len = end as u32;
        head_hash = portwarden::source::fnv1a(&text[..end]);
    }
    // Bit 4: the rotated file is also in the cursor's list of lingering files.
    let lingering = match rotated {
        Some(bytes) if flags & 16 == 16 => {
            let (dev, ino) = identity(&old);
            vec![FilePosition {
                dev,
                ino,
                offset: offset % (bytes.len() as u64 + 2),
                head_len,
                head_hash,
            }]
        }
        _ => Vec::new(),
    };
    let cursor = Cursor::File {
        dev,
        ino,
        offset,
        head_len,
        head_hash,
        rotated: lingering,
    };
    let mut src = FileSource::open(&path, Some(cursor))
        .unwrap_or_else(|e| panic!("opening a regular file failed: {e}"));
    let mut records = read_all(&mut src);
    records.extend(read_all(&mut src));
    let written = current.len() + rotated.map_or(0, <[u8]>::len);
    let got: usize = records.iter().map(Vec::len).sum();
    assert!(
        records.iter().all(|r| !r.contains(&b'\n')),
        "a record holds a newline"
    );
    assert!(
        got <= written,
        "{got} bytes of records from {written} bytes of files"
    );
    let saved = src.cursor();
    if let Some(Cursor::File { offset, .. }) = &saved {
        assert!(
            *offset <= current.len() as u64,
            "saved offset {offset} past the end of a {}-byte file",
            current.len()
        );
    }
    drop(src);
    let _ = std::fs::remove_file(&old);
    let mut resumed = FileSource::open(&path, saved.clone())
        .unwrap_or_else(|e| panic!("reopening from the saved cursor failed: {e}"));
    let again = read_all(&mut resumed);
    assert!(
        again.is_empty(),
        "resuming from {saved:?} read {} record(s) again",
        again.len()
    );
}

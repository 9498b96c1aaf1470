//! Offline forensics: read log files through the same parse and detect stages as the live
//! modes and sum up what each source did, for `portwarden scan` (table, JSON, HTML report).
//!
//! In: files (`-` for standard input, `*.gz` decompressed), the `[log]` and `[detect]` config,
//! the served ports. Out: a [`ScanReport`] with **one entry per source** that reached a verdict
//! ([`SourceReport`]: its rules and scan types, total distinct ports, first and last seen, the
//! number of sessions) and every finding of that source kept under it, plus the parse counts.
//!
//! Why a second tally beside the detector: the detector's evidence is per session (its state
//! restarts after `slow_gap` of silence) and bounded to what a verdict needs, so "distinct ports
//! over the whole log" and the timeline of the HTML report cannot be read back from findings.
//! A private tally keeps, per source, the records, their time span, a count per `(proto, port)`,
//! per scan type, and (for the HTML report only) per time bucket. Memory stays bounded: at most `[detect] max_sources`
//! sources are tallied (sources beyond that are counted in [`ScanReport::untallied_sources`] and
//! fall back to their findings' evidence), and a source's timeline coarsens its buckets instead
//! of growing past [`MAX_TIMELINE_BUCKETS`].
//!
//! Rendering lives beside it: [`table`] (the terminal table), [`html`] (the self-contained
//! page), [`progress`] (the progress bar on a terminal).

pub mod html;
pub mod progress;
pub mod table;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use serde::Serialize;

use crate::config::{DetectConfig, LogConfig};
use crate::detect::state::SCAN_TYPES;
use crate::detect::{PortScanDetector, ServedPorts};
use crate::input;
use crate::mapped::MappedFile;
use crate::parse::{ParseContext, ParseStats, Parser};
use crate::record::{Finding, Probe, Proto, Record, ScanType, SourceKind};

/// A source's timeline never holds more buckets than this; past it, buckets are merged 4 to 1.
pub const MAX_TIMELINE_BUCKETS: usize = 2048;
/// Ports listed per source (most probed first).
pub const TOP_PORTS: usize = 10;

/// What the scan reads and how it judges.
#[derive(Debug, Clone)]
pub struct ScanSettings {
    pub log: LogConfig,
    pub detect: DetectConfig,
    pub served: ServedPorts,
    /// Keep each source's timeline (the HTML report's plot); off, the tally stays small.
    pub timeline: bool,
    /// Now, for the parser (BSD syslog stamps have no year; it is inferred from this).
    pub now: jiff::Timestamp,
}

/// Where the first line rejected for a reason was, and what it said.
#[derive(Debug, Clone, Serialize)]
pub struct RejectSample {
    pub file: PathBuf,
    /// 1-based. (Lines the reader passes on: after an overlong line, which it skips, one short.)
    pub line: u64,
    /// The line, lossily decoded, cut at [`SAMPLE_TEXT`] bytes.
    pub text: String,
}

/// Bytes of a rejected line kept as its sample.
pub const SAMPLE_TEXT: usize = 300;

/// A file the scan could not read, or not to its end, and why. What came before the error is
/// counted; the other files are read all the same.
#[derive(Debug, Clone, Serialize)]
pub struct FileError {
    pub file: PathBuf,
    pub error: String,
}

/// The whole result of a scan; serialised as `scan --json`.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    /// One entry per source with at least one finding, by first finding's first probe.
    pub scanners: Vec<SourceReport>,
    pub files: Vec<PathBuf>,
    pub lines: u64,
    pub records: u64,
    pub rejected: BTreeMap<crate::parse::Reject, u64>,
    /// The first line rejected for each reason (see [`RejectSample`]).
    pub rejected_samples: BTreeMap<crate::parse::Reject, RejectSample>,
    /// Files that could not be read to their end: the report covers the rest.
    pub errors: Vec<FileError>,
    pub overlong_lines: u64,
    /// Sources seen after the tally was full (see the module doc); 0 in all but huge logs.
    pub untallied_sources: u64,
    /// Records by scan type, over the scanners' records (most first).
    pub scan_types: Vec<TypeCount>,
    /// The most probed ports over the scanners' records (most first, at most 20).
    pub top_ports: Vec<PortTally>,
    /// Per scanner, in the order of `scanners`: records per time bucket (for the HTML plot).
    #[serde(skip)]
    pub timelines: Vec<Timeline>,
}

/// One source that reached a verdict, with every finding (session) of it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    pub source: IpAddr,
    /// Rules that fired, in order of first detection (`fast_scan`, `slow_scan`, ...).
    pub rules: Vec<&'static str>,
    /// Scan types of its findings, in order of first detection.
    pub scan_types: Vec<&'static str>,
    /// Distinct `(proto, port)` over the whole input.
    pub ports: u32,
    /// LOG records of the source over the whole input.
    pub records: u64,
    /// Findings of the source: one per session that reached a verdict.
    pub sessions: u32,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Most probed ports over the whole input, as `proto/port`.
    pub top_ports: Vec<String>,
    pub findings: Vec<FindingRow>,
}

/// One finding, flattened for reports.
#[derive(Debug, Clone, Serialize)]
pub struct FindingRow {
    pub kind: &'static str,
    pub scan_type: &'static str,
    pub ports: u32,
    pub probes: u32,
    pub destinations: u32,
    pub failures: u32,
    pub successes: u32,
    pub records: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub detected_at: Timestamp,
    pub top_ports: Vec<String>,
}

impl From<&Finding> for FindingRow {
    fn from(f: &Finding) -> Self {
        let e = &f.evidence;
        FindingRow {
            kind: f.kind.as_str(),
            scan_type: f.scan_type.as_str(),
            ports: e.ports,
            probes: e.probes,
            destinations: e.destinations,
            failures: e.failures,
            successes: e.successes,
            records: e.records,
            first_seen: e.first_seen,
            last_seen: e.last_seen,
            detected_at: f.detected_at,
            top_ports: e
                .top_ports
                .iter()
                .map(|p| format!("{}/{}", p.proto, p.port))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeCount {
    pub scan_type: &'static str,
    pub records: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortTally {
    pub port: String,
    pub records: u64,
    /// Scanners that probed it.
    pub scanners: u32,
}

/// Records per time bucket of one source: bucket `i` covers
/// `[i * bucket_us, (i + 1) * bucket_us)` microseconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    pub bucket_us: i64,
    pub counts: BTreeMap<i64, u64>,
}

impl Timeline {
    fn new() -> Timeline {
        Timeline {
            bucket_us: 1_000_000,
            counts: BTreeMap::new(),
        }
    }

    fn add(&mut self, t_us: i64) {
        *self
            .counts
            .entry(t_us.div_euclid(self.bucket_us))
            .or_default() += 1;
        while self.counts.len() > MAX_TIMELINE_BUCKETS {
            self.coarsen(4);
        }
    }

    fn coarsen(&mut self, factor: i64) {
        let old = std::mem::take(&mut self.counts);
        for (i, n) in old {
            *self.counts.entry(i.div_euclid(factor)).or_default() += n;
        }
        self.bucket_us = self.bucket_us.saturating_mul(factor);
    }
}

/// Records per `(protocol, port)` of one source. Most sources probe a port or two, a scanner
/// that keeps coming back a few dozen: the first [`PortCounts::INLINE`] live in the source's
/// own record, where a lookup finds them in memory already read (a map of its own per source
/// cost a cache miss per record; with 6 inline, so did every record of a scanner walking 16
/// ports), the rest in a map.
#[derive(Debug, Clone)]
struct PortCounts {
    inline: [((Proto, u16), u64); PortCounts::INLINE],
    len: usize,
    more: foldhash::HashMap<(Proto, u16), u64>,
}

impl Default for PortCounts {
    fn default() -> Self {
        PortCounts {
            inline: [((Proto::Tcp, 0), 0); PortCounts::INLINE],
            len: 0,
            more: foldhash::HashMap::default(),
        }
    }
}

impl PortCounts {
    const INLINE: usize = 16;

    fn add(&mut self, key: (Proto, u16)) {
        if let Some((_, n)) = self.inline[..self.len].iter_mut().find(|(k, _)| *k == key) {
            *n += 1;
        } else if self.len < Self::INLINE {
            self.inline[self.len] = (key, 1);
            self.len += 1;
        } else {
            *self.more.entry(key).or_default() += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&(Proto, u16), &u64)> {
        self.inline[..self.len]
            .iter()
            .map(|(k, n)| (k, n))
            .chain(self.more.iter())
    }

    /// Distinct ports.
    fn len(&self) -> usize {
        self.len + self.more.len()
    }
}

/// What one source did over the whole input.
#[derive(Debug, Clone)]
struct Activity {
    records: u64,
    first_us: i64,
    last_us: i64,
    ports: PortCounts,
    /// Records per scan type, indexed by `ScanType as usize` (`SCAN_TYPES[t as usize] == t`:
    /// the detector's own list, in declaration order).
    types: [u64; SCAN_TYPES.len()],
    timeline: Timeline,
}

impl Activity {
    fn new(t: i64) -> Activity {
        Activity {
            records: 0,
            first_us: t,
            last_us: t,
            ports: PortCounts::default(),
            types: [0; SCAN_TYPES.len()],
            timeline: Timeline::new(),
        }
    }

    fn observe(&mut self, probe: &Probe, timeline: bool) {
        let t = probe.time.as_microsecond();
        self.records += 1;
        self.first_us = self.first_us.min(t);
        self.last_us = self.last_us.max(t);
        if let (Proto::Tcp | Proto::Udp | Proto::Sctp, Some(port)) = (probe.proto, probe.dport) {
            self.ports.add((probe.proto, port));
        }
        self.types[probe.scan_type() as usize] += 1;
        if timeline {
            self.timeline.add(t);
        }
    }
}

/// The per-source tally of a scan, bounded to `limit` sources.
#[derive(Debug)]
struct Tally {
    limit: usize,
    timeline: bool,
    /// Where the activity of each tallied source is in `activity`: an index of small entries
    /// that stays in the cache, the activities (a few hundred bytes each) apart, so that
    /// looking a source up touches only its own activity (see `prefetch`).
    index: foldhash::HashMap<IpAddr, usize>,
    activity: Vec<Activity>,
    untallied: HashSet<IpAddr>,
    /// Bound on `untallied` itself: past it, sources are only counted.
    untallied_overflow: u64,
}

impl Tally {
    fn new(limit: usize, timeline: bool) -> Tally {
        Tally {
            limit: limit.max(1),
            timeline,
            index: foldhash::HashMap::default(),
            activity: Vec::new(),
            untallied: HashSet::new(),
            untallied_overflow: 0,
        }
    }

    /// Start loading the activity of `src` into the cache (a hint: see [`crate::prefetch`]).
    #[inline]
    fn prefetch(&self, src: &IpAddr) {
        if let Some(&i) = self.index.get(src) {
            crate::prefetch::lines(&self.activity[i], crate::prefetch::lines_of::<Activity>());
        }
    }

    fn observe(&mut self, probe: &Probe) {
        if let Some(&i) = self.index.get(&probe.src) {
            self.activity[i].observe(probe, self.timeline);
        } else if self.activity.len() < self.limit {
            let mut a = Activity::new(probe.time.as_microsecond());
            a.observe(probe, self.timeline);
            self.index.insert(probe.src, self.activity.len());
            self.activity.push(a);
        } else if self.untallied.len() < self.limit {
            self.untallied.insert(probe.src);
        } else if !self.untallied.contains(&probe.src) {
            // Counted at most once per record, not per source: an upper bound, said as such.
            self.untallied_overflow += 1;
        }
    }

    /// The activity of `src`, taken out of the tally.
    fn take(&mut self, src: &IpAddr) -> Option<Activity> {
        let i = self.index.remove(src)?;
        Some(std::mem::replace(&mut self.activity[i], Activity::new(0)))
    }
}

/// Counts bytes read from the files (before decompression) for the progress bar.
pub trait ScanProgress {
    /// Called before reading a file; `len` is its size when known (not for standard input).
    fn start_file(&self, _path: &std::path::Path, _len: Option<u64>) {}
    /// `bytes` more bytes and `lines` more lines were read.
    fn advance(&self, _bytes: u64, _lines: u64) {}
    /// Whether `advance` uses its line count (counting lines costs a pass over the bytes).
    fn counts_lines(&self) -> bool {
        false
    }
    /// The scan is over (clear the bar).
    fn finish(&self) {}
}

/// No progress reporting.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;
impl ScanProgress for NoProgress {}

/// A reader that counts what passes through it.
struct Counting<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Bytes of whole lines in one block read and parsed by one thread.
const CHUNK_BYTES: usize = 512 * 1024;

/// Bytes of a mapped file parsed and taken before their pages are released: what the map
/// adds to the scan's resident memory. Released a block at a time, the scan of the bench log
/// took 166 ms (wall, median of 31 interleaved runs) against 153 ms this way: each release
/// interrupts both cores to flush their TLBs. (2 and 8 MiB: no better.)
const RELEASE_BYTES: usize = 4 << 20;

/// A block of whole lines and what the parser made of each, in order.
struct ParsedChunk {
    seq: u64,
    results: Vec<Result<Probe, crate::parse::Reject>>,
    /// The first line of each rejection reason in this block: (reason, index, text).
    samples: Vec<(crate::parse::Reject, usize, String)>,
    /// Lines of this block too long to read.
    overlong: u64,
    /// Where the block ends in the file's map (0 when the file is read), for the home thread
    /// to release the pages before it.
    end: usize,
}

impl ParsedChunk {
    /// Split and parse a block (on any of the scan's threads), into `results` (an emptied
    /// vector to reuse: a fresh one per block costs page faults and zeroed pages).
    fn parse(
        seq: u64,
        block: &[u8],
        parser: &mut Parser,
        mut results: Vec<Result<Probe, crate::parse::Reject>>,
    ) -> ParsedChunk {
        results.clear();
        results.reserve(block.len() / 128);
        let mut samples: Vec<(crate::parse::Reject, usize, String)> = Vec::new();
        let overlong = input::for_each_line_in(block, input::MAX_LINE_LEN, |line| {
            let result = parser.parse(Record {
                kind: SourceKind::File,
                bytes: line,
            });
            if let Err(reason) = result
                && !samples.iter().any(|(r, _, _)| *r == reason)
            {
                samples.push((
                    reason,
                    results.len(),
                    String::from_utf8_lossy(&line[..line.len().min(SAMPLE_TEXT)])
                        .trim_end()
                        .to_string(),
                ));
            }
            results.push(result);
        });
        ParsedChunk {
            seq,
            results,
            samples,
            overlong,
            end: 0,
        }
    }
}

/// What the scan builds up over every file, in the order of the lines.
struct Accumulated {
    detector: PortScanDetector,
    tally: Tally,
    stats: ParseStats,
    samples: BTreeMap<crate::parse::Reject, RejectSample>,
    overlong: u64,
}

impl Accumulated {
    fn new(settings: &ScanSettings) -> Accumulated {
        Accumulated {
            detector: PortScanDetector::new(&settings.detect, settings.served.clone()),
            tally: Tally::new(settings.detect.max_sources, settings.timeline),
            stats: ParseStats::default(),
            samples: BTreeMap::new(),
            overlong: 0,
        }
    }

    fn into_report(self, files: Vec<PathBuf>, errors: Vec<FileError>) -> ScanReport {
        let mut report = summarise(
            self.detector.findings(),
            self.tally,
            files,
            self.stats,
            self.overlong,
        );
        report.rejected_samples = self.samples;
        report.errors = errors;
        report
    }

    /// Lines `first_line + 1 ..` of `path`, parsed. Gives back the block's results vector.
    fn take(
        &mut self,
        path: &std::path::Path,
        first_line: u64,
        parsed: ParsedChunk,
    ) -> Vec<Result<Probe, crate::parse::Reject>> {
        for (i, result) in parsed.results.iter().enumerate() {
            // The state of the source a few records ahead, loaded while these are counted
            // (see `crate::prefetch`): the scan of the bench log took 3 % to 8 % less wall
            // time.
            if let Some(Ok(ahead)) = parsed.results.get(i + PREFETCH_AHEAD) {
                self.detector.prefetch(&ahead.src);
                self.tally.prefetch(&ahead.src);
            }
            self.stats.count(result);
            if let Ok(probe) = result {
                self.detector.observe(probe);
                self.tally.observe(probe);
            }
        }
        for (reason, i, text) in parsed.samples {
            self.samples.entry(reason).or_insert_with(|| RejectSample {
                file: path.to_path_buf(),
                line: first_line + i as u64 + 1,
                text,
            });
        }
        self.overlong += parsed.overlong;
        parsed.results
    }
}

/// How many records ahead of the one being counted the accumulator prefetches the state of
/// its source.
const PREFETCH_AHEAD: usize = 4;

/// Blocks a thread may read past the one the accumulator takes next, per thread: what bounds
/// the memory of a scan whose threads are not scheduled evenly.
const AHEAD_PER_THREAD: u64 = 4;

/// The blocks of one file between the threads: those parsed and not yet taken, in order.
struct Pending {
    chunks: BTreeMap<u64, ParsedChunk>,
    /// The sequence number the accumulator takes next.
    next: u64,
}

/// One file being scanned, shared by the threads that read, parse and take its blocks. Each
/// thread reads the next block (one thread at a time, or a slice of the file's map) and parses
/// it; the home thread, the one that called `run`, also hands the blocks to the accumulator
/// in order, between blocks of its own. So a block is parsed in the cache of the core that
/// read it, and the accumulator, which must see the lines in order, keeps its tables in one
/// core's cache, without a thread of its own to wake and feed. (With a reader thread, two
/// parse threads and a detector thread, the throughput bench's log took 0.27 s on two cores
/// against 0.21 s with every thread reading and parsing: medians of 15 interleaved runs.)
struct FileScan<'a, R> {
    path: &'a std::path::Path,
    /// Where the file's blocks come from.
    source: BlockSource<'a, R>,
    /// Bytes of the file read so far (for the progress bar).
    bytes: Arc<AtomicU64>,
    /// The sequence number of the next block read (as in `source`, readable without its lock).
    read: AtomicU64,
    pending: Mutex<Pending>,
    /// Signalled when the accumulator moves on, for a thread too far ahead of it, and when a
    /// block is left for it, for the home thread.
    moved: Condvar,
    /// The accumulator and the lines it has taken from this file; only the home thread locks
    /// it.
    acc: Mutex<(&'a mut Accumulated, u64)>,
    spare_blocks: Mutex<Vec<Vec<u8>>>,
    spare_results: Mutex<Vec<Vec<Result<Probe, crate::parse::Reject>>>>,
    /// The read error that ended the file early.
    error: Mutex<Option<std::io::Error>>,
    /// A thread panicked: the others stop.
    stop: AtomicBool,
    /// A thread met the end of the file (or a read error): `read` counts every block.
    done: AtomicBool,
    /// How far into the map its pages are released (only the home thread uses it).
    released: AtomicUsize,
    counts_lines: bool,
    /// Lines read, when counted (for the progress bar).
    lines: AtomicU64,
    /// What the thread that reads a given block does (tests put the threads in an order).
    #[cfg(test)]
    hook: Option<(u64, Hook)>,
    /// Threads waiting for the accumulator to move on.
    #[cfg(test)]
    waiting: std::sync::atomic::AtomicUsize,
}

/// Where a file scan's blocks come from: a reader, one thread at a time, or a map.
enum BlockSource<'a, R> {
    /// The file's blocks, read into buffers of the scan's own, and the sequence number of the
    /// next one.
    Read(Mutex<(input::Blocks<R>, u64)>),
    /// The file's bytes, parsed where the kernel keeps them: slices of about `block` bytes
    /// that end at a newline. `next` is where the next slice starts, and its sequence number.
    Mapped {
        map: &'a MappedFile,
        block: usize,
        next: Mutex<(usize, u64)>,
    },
}

impl<'a, R: Read> BlockSource<'a, R> {
    /// `reader`'s blocks of about `block` bytes.
    fn read(reader: R, block: usize) -> Self {
        let blocks = input::Blocks::new(reader, block, input::MAX_LINE_LEN);
        BlockSource::Read(Mutex::new((blocks, 0)))
    }

    /// Slices of `map` of about `block` bytes.
    fn mapped(map: &'a MappedFile, block: usize) -> Self {
        BlockSource::Mapped {
            map,
            block,
            next: Mutex::new((0, 0)),
        }
    }
}

/// A block of whole lines, in a buffer of the scan's own or in a map.
enum Block<'m> {
    Owned(Vec<u8>),
    Mapped(&'m MappedFile, std::ops::Range<usize>),
}

impl std::ops::Deref for Block<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Block::Owned(v) => v,
            Block::Mapped(map, range) => &map.bytes()[range.clone()],
        }
    }
}

/// What a test makes the thread that reads a given block do.
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
enum Hook {
    /// Before parsing it, wait until every other thread waits for it: they have read as far
    /// ahead as they may.
    Hold,
    /// The same, then panic.
    Panic,
    /// Cut the file at this path to this many bytes (as `copytruncate` does), then parse.
    Cut(&'static std::path::Path, u64),
}

/// Lock, whether or not another thread panicked holding the lock (the scan then reports the
/// panic as the file's error; the state is not read again).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Tells the other threads of a file scan to stop when this one unwinds.
struct StopOnPanic<'s, 'a, R>(&'s FileScan<'a, R>);

impl<R> Drop for StopOnPanic<'_, '_, R> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop.store(true, Ordering::SeqCst);
            let _pending = lock(&self.0.pending);
            self.0.moved.notify_all();
        }
    }
}

impl<'a, R: Read + Send> FileScan<'a, R> {
    fn new(
        path: &'a std::path::Path,
        acc: &'a mut Accumulated,
        source: BlockSource<'a, R>,
        bytes: Arc<AtomicU64>,
        counts_lines: bool,
    ) -> Self {
        FileScan {
            path,
            source,
            bytes,
            read: AtomicU64::new(0),
            pending: Mutex::new(Pending {
                chunks: BTreeMap::new(),
                next: 0,
            }),
            moved: Condvar::new(),
            acc: Mutex::new((acc, 0)),
            spare_blocks: Mutex::new(Vec::new()),
            spare_results: Mutex::new(Vec::new()),
            error: Mutex::new(None),
            stop: AtomicBool::new(false),
            done: AtomicBool::new(false),
            released: Default::default(),
            counts_lines,
            lines: AtomicU64::new(0),
            #[cfg(test)]
            hook: None,
            #[cfg(test)]
            waiting: Default::default(),
        }
    }

    /// Scan the file on `threads` threads, this one among them (`on_block` runs here after each
    /// of its blocks). Returns the lines dropped as too long by the reader, or the error that
    /// ended the file (the lines before it are taken).
    fn run(
        &self,
        threads: usize,
        parser: &Parser,
        on_block: &mut dyn FnMut(),
    ) -> std::io::Result<u64> {
        let panicked = std::thread::scope(|scope| {
            let others: Vec<_> = (1..threads)
                .map(|_| {
                    let mut parser = parser.clone();
                    let this = self;
                    scope.spawn(move || this.work(&mut parser, threads, false, &mut || {}))
                })
                .collect();
            let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.work(&mut parser.clone(), threads, true, on_block)
            }));
            let mut panicked = mine.is_err();
            for thread in others {
                panicked |= thread.join().is_err();
            }
            panicked
        });
        if panicked {
            return Err(std::io::Error::other("a thread of the scan panicked"));
        }
        debug_assert!(lock(&self.pending).chunks.is_empty());
        let skipped = match &self.source {
            BlockSource::Read(reading) => lock(reading).0.skipped(),
            // Lines too long are counted with each block's lines (`ParsedChunk::overlong`).
            BlockSource::Mapped { .. } => 0,
        };
        match lock(&self.error).take() {
            Some(e) => Err(e),
            None => Ok(skipped),
        }
    }

    /// The mapped file was found cut to `held` bytes of its `len`: the scan ends there, as a
    /// read that meets the new end of the file does, and says so.
    fn cut_short(&self, held: usize, len: usize) {
        let mut error = lock(&self.error);
        if error.is_none() {
            *error = Some(std::io::Error::other(format!(
                "cut to {held} bytes while it was read (it held {len}): the lines past that \
                 were not read"
            )));
        }
    }

    /// The next block and its sequence number; `None` at the end of the file or after a read
    /// error (kept for `run` to report).
    fn next_block(&self) -> Option<(u64, Block<'a>)> {
        let (seq, block) = match &self.source {
            BlockSource::Read(reading) => {
                let fresh = lock(&self.spare_blocks).pop().unwrap_or_default();
                let mut reading = lock(reading);
                match reading.0.next(fresh) {
                    Ok(Some(block)) => {
                        let seq = reading.1;
                        reading.1 += 1;
                        self.read.store(reading.1, Ordering::SeqCst);
                        (seq, Block::Owned(block))
                    }
                    Ok(None) => return None,
                    Err(e) => {
                        *lock(&self.error) = Some(e);
                        return None;
                    }
                }
            }
            BlockSource::Mapped { map, block, next } => {
                let mut next = lock(next);
                let (start, seq) = *next;
                // A file cut short under the scan ends where it was cut.
                let bytes = &map.bytes()[..map.held()];
                if bytes.len() < map.bytes().len() {
                    self.cut_short(bytes.len(), map.bytes().len());
                }
                if start >= bytes.len() {
                    return None;
                }
                let from = (start + block).min(bytes.len());
                let end =
                    memchr::memchr(b'\n', &bytes[from..]).map_or(bytes.len(), |i| from + i + 1);
                *next = (end, seq + 1);
                self.read.store(seq + 1, Ordering::SeqCst);
                self.bytes
                    .fetch_add((end - start) as u64, Ordering::Relaxed);
                (seq, Block::Mapped(map, start..end))
            }
        };
        Some((seq, block))
    }

    /// One thread's loop: read a block, parse it, hand it on; until the file ends. The `home`
    /// thread (the one that called `run`) is the only one that feeds the accumulator, so that
    /// the detector's tables stay in the cache of one core. (When it went to whichever thread
    /// was free, the tables moved between cores with it: in the spells when this VM's two
    /// cores are slow to share a cache line, the throughput bench's scan took about 10 % more
    /// CPU time that way, 440 against 390 ms, medians of 21 interleaved runs.)
    fn work(&self, parser: &mut Parser, threads: usize, home: bool, on_block: &mut dyn FnMut()) {
        let _stop = StopOnPanic(self);
        let ahead = AHEAD_PER_THREAD * threads.max(1) as u64;
        loop {
            {
                let mut pending = lock(&self.pending);
                while self.read.load(Ordering::SeqCst) >= pending.next + ahead
                    && !self.stop.load(Ordering::SeqCst)
                {
                    if home && pending.chunks.contains_key(&pending.next) {
                        pending = self.take_ready(pending);
                        continue;
                    }
                    #[cfg(test)]
                    self.waiting.fetch_add(1, Ordering::SeqCst);
                    pending = self
                        .moved
                        .wait(pending)
                        .unwrap_or_else(PoisonError::into_inner);
                    #[cfg(test)]
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                }
            }
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let Some((seq, block)) = self.next_block() else {
                self.done.store(true, Ordering::SeqCst);
                break;
            };
            #[cfg(test)]
            self.run_hook(seq, threads, ahead);
            if self.counts_lines {
                let n = memchr::memchr_iter(b'\n', &block).count() as u64;
                self.lines.fetch_add(n, Ordering::Relaxed);
            }
            let results = lock(&self.spare_results).pop().unwrap_or_default();
            let mut parsed = ParsedChunk::parse(seq, &block, parser, results);
            match block {
                Block::Owned(buffer) => lock(&self.spare_blocks).push(buffer),
                Block::Mapped(map, range) => {
                    // Cut under the parse: what it read past the cut may be zeros.
                    let held = map.held();
                    if held < range.end {
                        self.cut_short(held, map.bytes().len());
                        let whole = &map.bytes()[range.start..held.max(range.start)];
                        parsed = ParsedChunk::parse(seq, whole, parser, parsed.results);
                    }
                    parsed.end = range.end;
                }
            }
            self.hand_on(parsed, home);
            on_block();
        }
        if home {
            // The other threads may still be parsing the last blocks: take them as they come.
            let mut pending = lock(&self.pending);
            loop {
                pending = self.take_ready(pending);
                let all_taken = self.done.load(Ordering::SeqCst)
                    && pending.next >= self.read.load(Ordering::SeqCst);
                if all_taken || self.stop.load(Ordering::SeqCst) {
                    return;
                }
                pending = self
                    .moved
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }

    /// The test's hook, if this thread read its block.
    #[cfg(test)]
    fn run_hook(&self, seq: u64, threads: usize, ahead: u64) {
        let Some((at, hook)) = self.hook.filter(|(at, _)| *at == seq) else {
            return;
        };
        if let Hook::Cut(path, len) = hook {
            let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(len).unwrap();
            return;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.waiting.load(Ordering::SeqCst) + 1 < threads {
            assert!(
                std::time::Instant::now() < deadline,
                "the other threads never waited for block {at}: read up to {}",
                self.read.load(Ordering::SeqCst)
            );
            std::thread::yield_now();
        }
        // Each thread checks the bound before it reads: the others may each be one past it.
        let read = self.read.load(Ordering::SeqCst);
        assert!(
            read <= at + ahead + threads as u64,
            "read {read} blocks ahead of {at}"
        );
        if let Hook::Panic = hook {
            panic!("test hook: a scan thread fails at block {at}");
        }
    }

    /// Leave `parsed` for the accumulator: the home thread takes it with every block that
    /// follows it in order; another thread tells the home thread it is there.
    fn hand_on(&self, parsed: ParsedChunk, home: bool) {
        let mut pending = lock(&self.pending);
        pending.chunks.insert(parsed.seq, parsed);
        if home {
            drop(self.take_ready(pending));
        } else {
            self.moved.notify_all();
        }
    }

    /// Feed the accumulator every block that is next in order (on the home thread).
    fn take_ready<'g>(&'g self, mut pending: MutexGuard<'g, Pending>) -> MutexGuard<'g, Pending> {
        loop {
            let next = pending.next;
            let Some(chunk) = pending.chunks.remove(&next) else {
                return pending;
            };
            pending.next += 1;
            self.moved.notify_all();
            drop(pending);
            let end = chunk.end;
            let results = {
                let mut acc = lock(&self.acc);
                let (acc, lines) = &mut *acc;
                let n = chunk.results.len() as u64;
                let results = acc.take(self.path, *lines, chunk);
                *lines += n;
                results
            };
            if let BlockSource::Mapped { map, .. } = &self.source {
                // Every block before this one is parsed: let their pages go, a few MiB at a
                // time (each release interrupts both cores to flush their TLBs).
                let released = self.released.load(Ordering::Relaxed);
                if end >= released + RELEASE_BYTES {
                    map.release(released..end);
                    self.released.store(end, Ordering::Relaxed);
                }
            }
            lock(&self.spare_results).push(results);
            pending = lock(&self.pending);
        }
    }
}

/// How many threads read and parse: every core but none beyond 8.
fn scan_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 8))
}

/// Read `files` and report every source that reached a verdict. A file that cannot be opened
/// or read to its end (missing, a directory, a truncated `.gz`) does not sink the others: it is
/// named in [`ScanReport::errors`] and what could be read is reported.
///
/// Runs on every core: each thread (this one among them) reads a block of whole lines, parses
/// it, and feeds the parsed blocks to the detector in the order of the lines (see
/// `FileScan`), so the report is the same as from one thread (tested below). Memory stays
/// bounded: a few blocks in flight per thread.
pub fn scan_files(
    files: &[PathBuf],
    settings: &ScanSettings,
    progress: &dyn ScanProgress,
) -> ScanReport {
    scan_files_with(files, settings, progress, scan_threads(), CHUNK_BYTES, true)
}

/// [`scan_files`] with `threads` threads and blocks of about `block` bytes; plain files are
/// mapped when `map`, read otherwise.
fn scan_files_with(
    files: &[PathBuf],
    settings: &ScanSettings,
    progress: &dyn ScanProgress,
    threads: usize,
    block: usize,
    map: bool,
) -> ScanReport {
    let parser = Parser::new(&settings.log, ParseContext::at(settings.now))
        .with_forwarded(settings.detect.forwarded);
    let mut acc = Accumulated::new(settings);
    let mut errors = Vec::new();
    let threads = threads.max(1);
    let counts_lines = progress.counts_lines();
    for path in files {
        let bytes = Arc::new(AtomicU64::new(0));
        // A plain file is parsed in place (see `crate::mapped`); standard input, a
        // compressed file or one that cannot be mapped is read. A pipe is not opened to be
        // looked at (its writer would see its reader go).
        let meta = (path.as_os_str() != "-")
            .then(|| std::fs::metadata(path).ok())
            .flatten();
        let plain = meta.as_ref().is_some_and(|m| m.is_file());
        let mapped = (map && plain && !input::is_gzip(path))
            .then(|| std::fs::File::open(path).ok())
            .flatten()
            .and_then(MappedFile::open);
        let source = match &mapped {
            Some(map) => Ok(BlockSource::mapped(map, block)),
            None => input::open_input_with(path, |r| {
                Box::new(Counting {
                    inner: r,
                    bytes: bytes.clone(),
                })
            })
            .map(|reader| BlockSource::read(reader, block)),
        };
        progress.start_file(path, meta.map(|m| m.len()));
        let read = source.and_then(|source| {
            let file = FileScan::new(path, &mut acc, source, bytes.clone(), counts_lines);
            let mut reported = (0u64, 0u64);
            file.run(threads, &parser, &mut || {
                let now = (
                    bytes.load(Ordering::Relaxed),
                    file.lines.load(Ordering::Relaxed),
                );
                progress.advance(now.0 - reported.0, now.1 - reported.1);
                reported = now;
            })
        });
        match read {
            Ok(n) => acc.overlong += n,
            Err(e) => {
                // `open_input`'s errors already start with the path.
                let text = e.to_string();
                let shown = path.display().to_string();
                let error = if text.starts_with(&shown) {
                    text
                } else {
                    format!("{shown}: {text}")
                };
                errors.push(FileError {
                    file: path.clone(),
                    error,
                });
            }
        }
    }
    progress.finish();
    acc.into_report(files.to_vec(), errors)
}

fn port_name((proto, port): (Proto, u16)) -> String {
    format!("{proto}/{port}")
}

/// Group findings by source and join them with the tally.
fn summarise(
    findings: Vec<Finding>,
    mut tally: Tally,
    files: Vec<PathBuf>,
    stats: ParseStats,
    overlong: u64,
) -> ScanReport {
    let mut by_source: Vec<(IpAddr, Vec<Finding>)> = Vec::new();
    let mut index: HashMap<IpAddr, usize> = HashMap::new();
    let mut sorted = findings;
    sorted.sort_by(|a, b| {
        a.evidence
            .first_seen
            .cmp(&b.evidence.first_seen)
            .then(a.source.cmp(&b.source))
    });
    for f in sorted {
        match index.get(&f.source) {
            Some(&i) => by_source[i].1.push(f),
            None => {
                index.insert(f.source, by_source.len());
                by_source.push((f.source, vec![f]));
            }
        }
    }

    let mut types: HashMap<ScanType, u64> = HashMap::new();
    let mut ports: HashMap<(Proto, u16), (u64, u32)> = HashMap::new();
    let mut scanners = Vec::with_capacity(by_source.len());
    let mut timelines = Vec::with_capacity(by_source.len());
    for (source, findings) in by_source {
        let mut rules: Vec<&'static str> = Vec::new();
        let mut scan_types: Vec<&'static str> = Vec::new();
        for f in &findings {
            if !rules.contains(&f.kind.as_str()) {
                rules.push(f.kind.as_str());
            }
            if !scan_types.contains(&f.scan_type.as_str()) {
                scan_types.push(f.scan_type.as_str());
            }
        }
        let rows: Vec<FindingRow> = findings.iter().map(FindingRow::from).collect();
        let report = match tally.take(&source) {
            Some(a) => {
                for (t, n) in SCAN_TYPES.iter().zip(a.types) {
                    if n > 0 {
                        *types.entry(*t).or_default() += n;
                    }
                }
                for (p, n) in a.ports.iter() {
                    let e = ports.entry(*p).or_default();
                    e.0 += n;
                    e.1 += 1;
                }
                let mut top: Vec<(&(Proto, u16), &u64)> = a.ports.iter().collect();
                top.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
                timelines.push(a.timeline);
                SourceReport {
                    source,
                    rules,
                    scan_types,
                    ports: u32::try_from(a.ports.len()).unwrap_or(u32::MAX),
                    records: a.records,
                    sessions: rows.len() as u32,
                    first_seen: Timestamp::from_microsecond(a.first_us)
                        .unwrap_or(Timestamp::UNIX_EPOCH),
                    last_seen: Timestamp::from_microsecond(a.last_us)
                        .unwrap_or(Timestamp::UNIX_EPOCH),
                    top_ports: top
                        .into_iter()
                        .take(TOP_PORTS)
                        .map(|(p, _)| port_name(*p))
                        .collect(),
                    findings: rows,
                }
            }
            // Not tallied (the tally was full): the findings' evidence is all there is.
            None => {
                timelines.push(Timeline::new());
                SourceReport {
                    source,
                    rules,
                    scan_types,
                    ports: findings.iter().map(|f| f.evidence.ports).max().unwrap_or(0),
                    records: findings.iter().map(|f| f.evidence.records).sum(),
                    sessions: rows.len() as u32,
                    first_seen: findings
                        .iter()
                        .map(|f| f.evidence.first_seen)
                        .min()
                        .unwrap_or(Timestamp::UNIX_EPOCH),
                    last_seen: findings
                        .iter()
                        .map(|f| f.evidence.last_seen)
                        .max()
                        .unwrap_or(Timestamp::UNIX_EPOCH),
                    top_ports: rows
                        .first()
                        .map(|r| r.top_ports.clone())
                        .unwrap_or_default(),
                    findings: rows,
                }
            }
        };
        scanners.push(report);
    }

    let mut scan_types: Vec<TypeCount> = types
        .into_iter()
        .map(|(t, records)| TypeCount {
            scan_type: t.as_str(),
            records,
        })
        .collect();
    scan_types.sort_by(|a, b| b.records.cmp(&a.records).then(a.scan_type.cmp(b.scan_type)));
    let mut top: Vec<((Proto, u16), (u64, u32))> = ports.into_iter().collect();
    top.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    let top_ports = top
        .into_iter()
        .take(20)
        .map(|(p, (records, scanners))| PortTally {
            port: port_name(p),
            records,
            scanners,
        })
        .collect();

    ScanReport {
        scanners,
        files,
        lines: stats.lines,
        records: stats.parsed,
        rejected: stats.rejected,
        rejected_samples: BTreeMap::new(),
        errors: Vec::new(),
        overlong_lines: overlong,
        untallied_sources: tally.untallied.len() as u64 + tally.untallied_overflow,
        scan_types,
        top_ports,
        timelines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{IfName, TcpFlags};

    fn probe(src: &str, port: u16, t_s: i64) -> Probe {
        Probe {
            time: Timestamp::from_second(t_s).unwrap(),
            src: src.parse().unwrap(),
            dst: "10.0.0.1".parse().unwrap(),
            proto: Proto::Tcp,
            sport: Some(40000),
            dport: Some(port),
            icmp_type: None,
            tcp_flags: TcpFlags(TcpFlags::SYN),
            iface: IfName::default(),
            ttl: None,
            window: None,
            len: None,
        }
    }

    #[test]
    fn port_counts_count_what_a_map_counts() {
        let mut rng = crate::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..300 {
            let (mut counts, mut map) = (PortCounts::default(), HashMap::new());
            let distinct = 1 + round % 20;
            for _ in 0..round {
                let state = rng.next();
                let port = (state % distinct as u64) as u16;
                let key = (
                    if state & 1 << 40 == 0 {
                        Proto::Tcp
                    } else {
                        Proto::Udp
                    },
                    port,
                );
                counts.add(key);
                *map.entry(key).or_insert(0u64) += 1;
            }
            let mut got: Vec<((Proto, u16), u64)> = counts.iter().map(|(k, n)| (*k, *n)).collect();
            got.sort();
            let mut want: Vec<((Proto, u16), u64)> = map.into_iter().collect();
            want.sort();
            assert_eq!(counts.len(), want.len(), "round {round}");
            assert_eq!(got, want, "round {round}");
        }
    }

    /// Many threads and small blocks, or one thread and one block: the same report, for
    /// every kind of line (probes, rejects of each reason, an over-long line, a `.gz` file, a
    /// missing file), across several files.
    /// 3000 lines of every kind a scan meets (records of the prefix `pw: `, IPv6, forged,
    /// other prefixes, bad addresses, junk, empty lines, a `\r`, one line too long).
    fn mixed_log() -> String {
        let mut text = String::new();
        for i in 0..3000u32 {
            let stamp = format!(
                "2026-11-18T09:{:02}:{:02}.{:06}+00:00",
                i / 600 % 60,
                i / 10 % 60,
                i
            );
            let line = match i % 9 {
                0..=2 => format!(
                    "{stamp} vm kernel: [ 600.{i:06}] pw: IN=eth0 OUT= MAC=52:54 SRC=203.0.{}.{} DST=192.0.2.10 LEN=44 TTL=40 ID=1 PROTO=TCP SPT=40000 DPT={} WINDOW=1024 RES=0x00 SYN URGP=0 ",
                    i % 3,
                    i % 50 + 1,
                    i % 40 + 1
                ),
                3 => format!(
                    "{stamp} vm kernel: pw: IN=eth0 OUT= SRC=2001:0db8:0000:0000:0000:0000:0000:{:04x} DST=2001:0db8:0000:0000:0000:0000:0000:0001 LEN=64 PROTO=UDP SPT=5 DPT={}",
                    i % 7,
                    i % 30
                ),
                4 => format!(
                    "{stamp} vm root: pw: IN=eth0 OUT= SRC=10.0.0.{} DST=10.0.0.1 PROTO=TCP SPT=1 DPT=22 SYN",
                    i % 200
                ),
                5 => format!(
                    "{stamp} vm kernel: [UFW BLOCK] IN=eth0 OUT= SRC=10.1.0.1 DST=10.0.0.1 PROTO=TCP SPT=1 DPT=23"
                ),
                6 => format!(
                    "{stamp} vm kernel: pw: IN=eth0 OUT= SRC=300.1.1.{i} DST=10.0.0.1 PROTO=TCP SPT=1 DPT=23"
                ),
                7 => "not a log line at all\r".to_string(),
                _ => String::new(),
            };
            text.push_str(&line);
            text.push('\n');
            if i == 1500 {
                text.push_str(&"x".repeat(input::MAX_LINE_LEN + 10));
                text.push('\n');
            }
        }
        text
    }

    /// [`mixed_log`] written to `kern.log` in `dir`: its text and its path.
    fn mixed_log_in(dir: &std::path::Path) -> (String, PathBuf) {
        let text = mixed_log();
        let path = dir.join("kern.log");
        std::fs::write(&path, &text).unwrap();
        (text, path)
    }

    /// Settings for [`mixed_log`].
    fn pw_settings() -> ScanSettings {
        ScanSettings {
            log: LogConfig {
                prefixes: vec![crate::config::LogPrefix::new("pw: ").unwrap()],
                accept_untrusted: false,
            },
            detect: DetectConfig::default(),
            served: ServedPorts::new(Vec::new()),
            timeline: true,
            now: "2026-11-18T12:00:00Z".parse().unwrap(),
        }
    }

    /// [`mixed_log`] scanned by `threads` threads from blocks of about 700 bytes (some 600),
    /// with `hook` on one block: the report, or the file's error.
    fn scan_hooked(
        text: &str,
        threads: usize,
        hook: Option<(u64, Hook)>,
        mapped: bool,
    ) -> Result<String, String> {
        let settings = pw_settings();
        let parser = Parser::new(&settings.log, ParseContext::at(settings.now));
        let path = std::path::Path::new("kern.log");
        let mut acc = Accumulated::new(&settings);
        let reader = input::Trickle {
            data: text.as_bytes(),
            step: 100,
        };
        let dir = tempfile::tempdir().unwrap();
        let map = mapped.then(|| {
            let on_disk = dir.path().join("kern.log");
            std::fs::write(&on_disk, text).unwrap();
            MappedFile::open(std::fs::File::open(&on_disk).unwrap()).unwrap()
        });
        let source = match &map {
            Some(map) => BlockSource::mapped(map, 700),
            None => BlockSource::read(reader, 700),
        };
        let mut file = FileScan::new(path, &mut acc, source, Arc::default(), false);
        file.hook = hook;
        let read = file.run(threads, &parser, &mut || {});
        drop(file);
        let overlong = read.map_err(|e| e.to_string())?;
        acc.overlong += overlong;
        Ok(report_json(acc))
    }

    fn report_json(acc: Accumulated) -> String {
        let report = acc.into_report(vec!["kern.log".into()], Vec::new());
        serde_json::to_string(&report).unwrap()
    }

    /// A mapped file cut short while it is scanned (`copytruncate`) is read up to the cut,
    /// as a read meeting the new end of the file would be, and the scan says so: the pages
    /// past the cut, which the parse may already be reading, neither end the process
    /// (`SIGBUS`) nor count as lines.
    #[test]
    fn a_mapped_file_cut_under_the_scan_is_read_up_to_the_cut() {
        let text = mixed_log().repeat(4);
        let cut = text[..text.len() / 3].rfind('\n').unwrap() + 1;
        assert!(text.len() - cut > 4 * 4096, "pages past the cut");
        let settings = pw_settings();
        let parser = Parser::new(&settings.log, ParseContext::at(settings.now));
        let mut acc = Accumulated::new(&settings);
        acc.take(
            std::path::Path::new("kern.log"),
            0,
            ParsedChunk::parse(0, &text.as_bytes()[..cut], &mut parser.clone(), Vec::new()),
        );
        let expected = report_json(acc);
        let dir = tempfile::tempdir().unwrap();
        let on_disk: &'static std::path::Path =
            Box::leak(dir.path().join("kern.log").into_boxed_path());
        // One block the cut falls in (the parse reads past it), or small blocks, the cut
        // made as the fourth is read.
        for (block, at) in [(64 << 20, 0), (700, 3)] {
            std::fs::write(on_disk, &text).unwrap();
            let map = MappedFile::open(std::fs::File::open(on_disk).unwrap()).unwrap();
            let mut acc = Accumulated::new(&settings);
            let source = BlockSource::mapped(&map, block);
            let path = std::path::Path::new("kern.log");
            let mut file: FileScan<'_, std::fs::File> =
                FileScan::new(path, &mut acc, source, Arc::default(), false);
            file.hook = Some((at, Hook::Cut(on_disk, cut as u64)));
            let read = file.run(1, &parser, &mut || {});
            drop(file);
            let err = read.unwrap_err().to_string();
            let said = format!(
                "cut to {cut} bytes while it was read (it held {})",
                text.len()
            );
            assert!(err.contains(&said), "{err}");
            assert_eq!(report_json(acc), expected, "blocks of {block}");
        }
    }

    /// A file's threads wait for a slow one instead of reading on without bound, and report
    /// what one thread does; a thread that panics makes the file's error, and the others,
    /// waiting for its block, stop instead of waiting for ever.
    #[test]
    fn threads_wait_for_a_slow_one_and_stop_when_one_panics() {
        let text = mixed_log();
        let one = scan_hooked(&text, 1, None, false).unwrap();
        assert!(one.contains("\"fast_scan\""), "{one}");
        for threads in [2, 3, 4] {
            for (at, mapped) in [(0, false), (7, false), (0, true), (7, true)] {
                let case = format!("{threads} threads, block {at} held, mapped {mapped}");
                let held = scan_hooked(&text, threads, Some((at, Hook::Hold)), mapped).unwrap();
                assert_eq!(held, one, "{case}");
                // On a thread of its own, so that threads left waiting fail the test instead
                // of hanging it.
                let (tx, rx) = std::sync::mpsc::channel();
                let text = text.clone();
                std::thread::spawn(move || {
                    let hook = Some((at, Hook::Panic));
                    let _ = tx.send(scan_hooked(&text, threads, hook, mapped));
                });
                let ended = rx.recv_timeout(std::time::Duration::from_secs(60));
                let err = ended
                    .expect("the scan never ended: its threads wait for a block no one brings")
                    .unwrap_err();
                assert!(err.contains("panicked"), "{case}: {err}");
            }
        }
    }

    #[test]
    fn parallel_scan_reports_what_one_thread_does() {
        let dir = tempfile::tempdir().unwrap();
        let (text, plain) = mixed_log_in(dir.path());
        let gz = dir.path().join("kern.log.1.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &text.as_bytes()[..text.len() / 2]).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let files = vec![gz, dir.path().join("missing.log"), plain];
        let settings = pw_settings();
        let one = scan_files_with(&files, &settings, &NoProgress, 1, 64 << 20, false);
        let json = |r: &ScanReport| serde_json::to_string(r).unwrap();
        for (threads, block, mapped) in [(3, 700, false), (1, 64 << 20, true), (3, 700, true)] {
            let many = scan_files_with(&files, &settings, &NoProgress, threads, block, mapped);
            let case = format!("{threads} threads, blocks of {block}, mapped {mapped}");
            assert_eq!(json(&one), json(&many), "{case}");
            assert_eq!(
                format!("{:?}", one.timelines),
                format!("{:?}", many.timelines),
                "{case}"
            );
        }
        assert!(
            one.overlong_lines == 1 && one.errors.len() == 1,
            "{}",
            json(&one)
        );
        assert!(
            !one.scanners.is_empty() && one.rejected_samples.len() >= 4,
            "{}",
            json(&one)
        );
    }

    /// A named pipe is read as a stream (not opened a first time to see whether it maps,
    /// which could leave its writer without a reader): the scan of a plain file, mapped, and
    /// of a pipe fed the same lines report the same.
    #[test]
    fn a_named_pipe_is_read_not_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let (text, plain) = mixed_log_in(dir.path());
        let fifo = dir.path().join("kern.fifo");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string and mode.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let writer = {
            let (fifo, text) = (fifo.clone(), text.clone());
            std::thread::spawn(move || {
                let mut pipe = std::fs::OpenOptions::new().write(true).open(fifo)?;
                std::io::Write::write_all(&mut pipe, text.as_bytes())
            })
        };
        let settings = pw_settings();
        let scan = |path: &PathBuf| {
            scan_files_with(
                std::slice::from_ref(path),
                &settings,
                &NoProgress,
                2,
                700,
                true,
            )
        };
        let piped = scan(&fifo);
        writer.join().unwrap().expect("the writer wrote every line");
        let mapped = scan(&plain);
        assert!(piped.errors.is_empty(), "{:?}", piped.errors);
        let json = |r: &ScanReport| serde_json::to_string(r).unwrap();
        let (fifo, plain) = (fifo.to_str().unwrap(), plain.to_str().unwrap());
        assert_eq!(json(&piped).replace(fifo, plain), json(&mapped));
    }

    fn run(probes: &[Probe], limit: usize) -> ScanReport {
        let detect = DetectConfig {
            max_sources: limit,
            ..DetectConfig::default()
        };
        let mut detector = PortScanDetector::new(&detect, ServedPorts::new(Vec::new()));
        let mut tally = Tally::new(limit, true);
        for p in probes {
            detector.observe(p);
            tally.observe(p);
        }
        summarise(
            detector.findings(),
            tally,
            Vec::new(),
            ParseStats::default(),
            0,
        )
    }

    /// Four bursts of 12 ports an hour apart: four sessions, one row, ports counted once.
    #[test]
    fn a_source_found_in_four_sessions_is_one_row() {
        let mut probes = Vec::new();
        for session in 0..4 {
            for port in 1..=12 {
                // Sessions overlap on ports 5..=12 shifted: 12 + 3*4 = 24 distinct ports.
                probes.push(probe(
                    "192.0.2.7",
                    port + session * 4,
                    1_800_000_000 + session as i64 * 3600 + i64::from(port),
                ));
            }
        }
        probes.push(probe("198.51.100.1", 80, 1_800_000_000));
        let r = run(&probes, 100);
        assert_eq!(r.scanners.len(), 1, "{:#?}", r.scanners);
        let s = &r.scanners[0];
        assert_eq!(s.source.to_string(), "192.0.2.7");
        assert_eq!(s.sessions, 4);
        assert_eq!(s.findings.len(), 4);
        assert_eq!(s.ports, 24);
        assert_eq!(s.records, 48);
        assert_eq!(s.rules, vec!["fast_scan"]);
        assert_eq!(s.scan_types, vec!["SYN"]);
        assert_eq!(s.first_seen.as_second(), 1_800_000_001);
        assert_eq!(s.last_seen.as_second(), 1_800_000_000 + 3 * 3600 + 12);
        assert_eq!(
            r.scan_types,
            vec![TypeCount {
                scan_type: "SYN",
                records: 48
            }]
        );
        // Ports 13..=16 were probed in three sessions (shifts 1, 2, 3), more than any other.
        assert_eq!(r.top_ports[0].records, 3);
        assert_eq!(r.timelines.len(), 1);
        assert_eq!(r.timelines[0].counts.values().sum::<u64>(), 48);
    }

    #[test]
    fn beyond_the_tally_bound_findings_still_report() {
        let mut probes = Vec::new();
        for (i, src) in ["192.0.2.1", "192.0.2.2"].iter().enumerate() {
            for port in 1..=12 {
                probes.push(probe(
                    src,
                    port,
                    1_800_000_000 + i as i64 * 20 + i64::from(port),
                ));
            }
        }
        let r = run(&probes, 1);
        assert_eq!(r.untallied_sources, 1);
        let ports: Vec<u32> = r.scanners.iter().map(|s| s.ports).collect();
        assert!(r.scanners.iter().all(|s| s.sessions == 1));
        assert_eq!(ports.len(), r.scanners.len());
        assert!(ports.iter().all(|&p| p > 0), "{ports:?}");
    }

    #[test]
    fn scan_types_index_their_own_slot() {
        for (i, t) in SCAN_TYPES.iter().enumerate() {
            assert_eq!(*t as usize, i, "{t}");
        }
    }

    /// Without the HTML report the tally keeps no timeline (the memory the bench measures).
    #[test]
    fn no_timeline_unless_asked() {
        let mut tally = Tally::new(10, false);
        for port in 1..=12 {
            tally.observe(&probe("192.0.2.7", port, 1_800_000_000 + i64::from(port)));
        }
        let a = tally.take(&"192.0.2.7".parse::<IpAddr>().unwrap()).unwrap();
        assert_eq!((a.records, a.ports.len()), (12, 12));
        assert!(a.timeline.counts.is_empty());
    }

    #[test]
    fn timelines_coarsen_instead_of_growing() {
        let mut t = Timeline::new();
        for s in 0..10_000 {
            t.add(s * 1_000_000);
        }
        assert!(t.counts.len() <= MAX_TIMELINE_BUCKETS);
        assert_eq!(t.counts.values().sum::<u64>(), 10_000);
        // 2049 one-second buckets became 4 s ones, 2049 of those became 16 s ones.
        assert_eq!(t.bucket_us, 16_000_000);
    }
}

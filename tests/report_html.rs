//! `portwarden scan --html` rendered by a real browser: Debian's headless `chromium` takes a
//! screenshot of the page (which must not be blank, and must show the coloured dots of the
//! timeline) and dumps the DOM it built (whose scanners table must list exactly the scanners
//! of the input, and whose findings table must list each of their sessions).
//!
//! The browser runs with a fresh profile, no network of its own (background networking, sync,
//! component updates and QUIC off, every host name unresolvable): the page is self-contained.
//! Without `chromium` on PATH the test prints why it skips, unless `PORTWARDEN_E2E=1` (CI):
//! then a missing browser is a failure.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn sample(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/testdata/samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The browser, or `None` after printing why the test skips.
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser"] {
        if portwarden::netns::on_path(name) {
            return Some(PathBuf::from(name));
        }
    }
    let why = "report_html: needs `chromium` on PATH (apt-get install chromium)";
    if std::env::var("PORTWARDEN_E2E").as_deref() == Ok("1") {
        panic!("PORTWARDEN_E2E=1 but {why}");
    }
    eprintln!("SKIPPED {why} (set PORTWARDEN_E2E=1 to make this a failure)");
    None
}

/// Run headless chromium on `page` with `extra` arguments; waits for it to exit, at most two
/// minutes (a hung browser is killed and fails the test).
fn run_chromium(browser: &Path, profile: &Path, page: &Path, extra: &[String]) -> Output {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--hide-scrollbars",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting chromium");
    // Drain the pipes on threads so a chatty browser cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).ok();
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).ok();
        v
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium did not finish within 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// The text of every `<td class="source">` inside the table with id `id` of `dom`.
fn sources_in_table(dom: &str, id: &str) -> Vec<String> {
    let start = dom
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table #{id} in the DOM"));
    let end = start + dom[start..].find("</table>").unwrap();
    let table = &dom[start..end];
    let open = "<td class=\"source\">";
    table
        .match_indices(open)
        .map(|(i, _)| {
            let rest = &table[i + open.len()..];
            rest[..rest.find("</td>").unwrap()].to_string()
        })
        .collect()
}

/// Three scanners: the seed's SYN scan, the same scan by another address in two sessions an
/// hour apart, and an XMAS scan; plus one client that is no scanner.
fn input() -> String {
    let seed = sample("syslog-rfc3339-nmap-sS-seed-12ports.txt");
    let mut log = seed.clone();
    for hour in ["23:2", "00:2"] {
        let day = if hour.starts_with("23") { "24" } else { "25" };
        log.push_str(
            &seed
                .replace("SRC=10.250.0.2", "SRC=192.0.2.45")
                .replace("2026-11-24T23:0", &format!("2026-11-{day}T{hour}")),
        );
    }
    log.push_str(
        &seed
            .replace("SRC=10.250.0.2", "SRC=198.51.100.9")
            .replace(" SYN URGP", " URG PSH FIN URGP")
            .replace("2026-11-24T23:06", "2026-11-24T23:45"),
    );
    let one = seed.lines().next().unwrap();
    log.push_str(&one.replace("SRC=10.250.0.2", "SRC=203.0.113.80"));
    log.push('\n');
    log
}

#[test]
fn chromium_renders_the_report_with_every_scanner() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kern.log");
    std::fs::write(&log, input()).unwrap();
    let page = dir.path().join("report.html");
    let out = common::portwarden(dir.path())
        .arg("scan")
        .arg("--html")
        .arg(&page)
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The DOM as the browser built it.
    let dom_out = run_chromium(
        &browser,
        &dir.path().join("profile-dom"),
        &page,
        &["--dump-dom".to_string()],
    );
    assert!(
        dom_out.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&dom_out.stderr)
    );
    let dom = String::from_utf8_lossy(&dom_out.stdout);
    let scanners: BTreeSet<String> = sources_in_table(&dom, "scanners-table")
        .into_iter()
        .collect();
    let want: BTreeSet<String> = ["10.250.0.2", "192.0.2.45", "198.51.100.9"]
        .map(String::from)
        .into();
    assert_eq!(scanners, want, "scanners table of the rendered page");
    assert_eq!(
        sources_in_table(&dom, "scanners-table").len(),
        3,
        "one row per scanner"
    );
    let mut sessions = sources_in_table(&dom, "findings-table");
    sessions.sort();
    assert_eq!(
        sessions,
        ["10.250.0.2", "192.0.2.45", "192.0.2.45", "198.51.100.9"],
        "findings table: one row per session"
    );
    assert!(dom.contains("<svg id=\"timeline-plot\""), "no timeline");

    // The screenshot: not blank, and the plots' colours are there.
    let shot = dir.path().join("shot.png");
    let shot_out = run_chromium(
        &browser,
        &dir.path().join("profile-shot"),
        &page,
        &[format!("--screenshot={}", shot.display())],
    );
    assert!(
        shot_out.status.success() && shot.exists(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&shot_out.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "unexpected PNG colour type {:?}",
        info.color_type
    );
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| &p[..3])
        .collect();
    let total = pixels.len();
    let mut counts = std::collections::HashMap::new();
    for p in &pixels {
        *counts.entry(*p).or_insert(0usize) += 1;
    }
    let background = counts.values().copied().max().unwrap();
    let ink = total - background;
    // Saturated pixels: the scan-type colours of the dots and bars (text is grey or black).
    let coloured = pixels
        .iter()
        .filter(|p| {
            let (lo, hi) = (p.iter().min().unwrap(), p.iter().max().unwrap());
            hi - lo > 60
        })
        .count();
    println!(
        "screenshot {}x{}: {} distinct colours, {ink} of {total} pixels not background ({:.1} %), {coloured} coloured",
        info.width,
        info.height,
        counts.len(),
        100.0 * ink as f64 / total as f64
    );
    assert!(
        ink * 100 > total,
        "the screenshot is (almost) blank: {ink} of {total} pixels differ from the background"
    );
    assert!(counts.len() > 16, "too few colours: {}", counts.len());
    assert!(
        coloured > 500,
        "no coloured plot in the screenshot: {coloured} pixels"
    );
}

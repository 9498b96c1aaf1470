//! `portwarden scan` through the real binary: the captured seed-lab scan is reported with its
//! evidence, forged lines are counted as refused, gzip and stdin work, and an unreadable file
//! is an error that names it.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

fn samples(name: &str) -> String {
    format!("{}/testdata/samples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn scan(args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd: Command = common::portwarden(dir.path());
    cmd.arg("scan")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn the_seed_scan_is_reported_with_its_evidence() {
    let (code, out, err) = scan(
        &[
            "--json",
            &samples("syslog-rfc3339-nmap-sS-seed-12ports.txt"),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    let scanners = v["scanners"].as_array().unwrap();
    assert_eq!(scanners.len(), 1, "{out}");
    let s = &scanners[0];
    assert_eq!(s["source"], "10.250.0.2");
    assert_eq!(s["rules"], serde_json::json!(["fast_scan"]));
    assert_eq!(s["scan_types"], serde_json::json!(["SYN"]));
    assert_eq!(s["ports"], 12);
    assert_eq!(s["records"], 12);
    assert_eq!(s["sessions"], 1);
    assert_eq!(s["first_seen"], "2026-11-24T23:06:53.947768Z");
    assert_eq!(s["last_seen"], "2026-11-24T23:06:53.947793Z");
    // The finding itself, with its evidence, under its source.
    let f = &s["findings"][0];
    assert_eq!(f["kind"], "fast_scan");
    assert_eq!(f["scan_type"], "SYN");
    assert_eq!(f["ports"], 12);
    assert_eq!(f["failures"], 12);
    assert_eq!(v["lines"], 12);
    assert_eq!(v["records"], 12);
    // Not a terminal: no progress bar, nothing at all on stderr.
    assert!(err.is_empty(), "{err}");
}

/// The same 12-port scan repeated in four sessions an hour apart (each a finding of its own,
/// since 30 minutes of silence end a session) is one source: one table row, four sessions,
/// and all four findings under it in the JSON.
#[test]
fn a_source_found_in_four_sessions_is_one_row() {
    let one = std::fs::read_to_string(samples("syslog-rfc3339-nmap-sS-seed-12ports.txt")).unwrap();
    let mut log = String::new();
    for hour in ["23", "00", "01", "02"] {
        let day = if hour == "23" { "24" } else { "25" };
        log.push_str(&one.replace("2026-11-24T23:", &format!("2026-11-{day}T{hour}:")));
    }
    let (code, out, err) = scan(&["-"], Some(log.as_bytes()));
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("10.250.0.2"))
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    let cols: Vec<&str> = rows[0].split_whitespace().collect();
    // SOURCE RULES TYPES PORTS RECORDS SESSIONS FIRST(2 words) LAST(2 words) TOP
    assert_eq!(
        &cols[..6],
        &["10.250.0.2", "fast_scan", "SYN", "12", "48", "4"],
        "{out}"
    );
    assert_eq!(
        &cols[6..10],
        &["2026-11-24", "23:06:53.947Z", "2026-11-25", "02:06:53.947Z"],
        "{out}"
    );
    assert!(out.contains("1 scanner(s); 48 line(s) read"), "{out}");

    let (_, out, _) = scan(&["--json", "-"], Some(log.as_bytes()));
    let v = json(&out);
    assert_eq!(v["scanners"].as_array().unwrap().len(), 1, "{out}");
    let findings = v["scanners"][0]["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 4, "{out}");
    let detected: Vec<&str> = findings
        .iter()
        .map(|f| f["first_seen"].as_str().unwrap())
        .collect();
    assert_eq!(
        detected,
        [
            "2026-11-24T23:06:53.947768Z",
            "2026-11-25T00:06:53.947768Z",
            "2026-11-25T01:06:53.947768Z",
            "2026-11-25T02:06:53.947768Z"
        ]
    );
}

#[test]
fn table_output_names_source_type_and_ports() {
    let (code, out, err) = scan(&[&samples("kmsg-nmap-sX.txt")], None);
    assert_eq!(code, 0, "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("10.250.0.2"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("XMAS") && row.contains("tcp/22"), "{row}");
    assert!(
        out.contains("1 scanner(s); 4 line(s) read, 4 LOG record(s) parsed"),
        "{out}"
    );
}

#[test]
fn forged_lines_are_refused_and_counted() {
    let mut log = String::new();
    for port in 1..=20 {
        // What `logger -t portscan "portwarden: ..."` leaves in /var/log/syslog.
        log.push_str(&format!(
            "2026-11-24T23:06:53.947768+00:00 vm root: portwarden: IN=vt OUT= MAC= SRC=198.51.100.7 DST=10.250.0.1 LEN=44 TOS=0x00 PREC=0x00 TTL=43 ID=1 PROTO=TCP SPT=4000 DPT={port} WINDOW=1024 RES=0x00 SYN URGP=0 \n"
        ));
    }
    let (code, out, err) = scan(&["--json", "-"], Some(log.as_bytes()));
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["scanners"].as_array().unwrap().len(), 0, "{out}");
    assert_eq!(v["rejected"]["untrusted"], 20, "{out}");
}

#[test]
fn a_hosts_own_outgoing_connections_are_not_a_scan() {
    // UFW with `--prefix ''`: [UFW AUDIT] logs this host's 200 outgoing connections to 200
    // ports; one inbound SYN scan of 12 ports is also there.
    let mut log = String::new();
    for port in 1..=200 {
        log.push_str(&format!(
            "Nov 24 10:15:05 gw kernel: [UFW AUDIT] IN= OUT=eth0 SRC=192.0.2.10 DST=198.51.100.80 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=41417 DF PROTO=TCP SPT={} DPT={port} WINDOW=64240 RES=0x00 SYN URGP=0 \n",
            40000 + port
        ));
    }
    for port in [21, 22, 23, 25, 53, 80, 110, 135, 139, 443, 445, 3389] {
        log.push_str(&format!(
            "Nov 24 10:16:05 gw kernel: [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.113.50 DST=192.0.2.10 LEN=44 TOS=0x00 PREC=0x00 TTL=244 ID=54321 PROTO=TCP SPT=48211 DPT={port} WINDOW=1024 RES=0x00 SYN URGP=0 \n"
        ));
    }
    let (code, out, err) = scan(&["--json", "--prefix", "", "-"], Some(log.as_bytes()));
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    let scanners = v["scanners"].as_array().unwrap();
    assert_eq!(scanners.len(), 1, "{out}");
    assert_eq!(scanners[0]["source"], "203.0.113.50");
    assert_eq!(v["rejected"]["outbound"], 200, "{out}");
}

#[test]
fn every_rejected_reason_names_a_sample_line() {
    let body = "IN=vt OUT= MAC= SRC=198.51.100.7 DST=10.250.0.1 LEN=44 TOS=0x00 PREC=0x00 TTL=43 ID=1 PROTO=TCP SPT=4000 DPT=22 WINDOW=1024 RES=0x00 SYN URGP=0";
    let log = format!(
        "2026-11-24T23:06:53.947768+00:00 vm kernel: portwarden: {body}\n\
         2026-11-24T23:06:53.947768+00:00 vm root: portwarden: {body}\n\
         2026-11-24T23:06:53.947768+00:00 vm root: portwarden: {body}\n\
         ?? what is this\n\
         2026-11-24T23:06:53.947768+00:00 vm kernel: portwarden: IN= OUT=vt SRC=10.250.0.1 DST=198.51.100.7 LEN=44 TTL=64 PROTO=TCP SPT=22 DPT=4000 ACK URGP=0\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.log");
    std::fs::write(&path, &log).unwrap();
    let file = path.to_str().unwrap();
    let (code, out, err) = scan(&["--json", file], None);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    let samples = &v["rejected_samples"];
    assert_eq!(samples["untrusted"]["line"], 2, "{out}");
    assert_eq!(samples["untrusted"]["file"], file, "{out}");
    assert!(
        samples["untrusted"]["text"]
            .as_str()
            .unwrap()
            .contains("vm root:")
    );
    assert_eq!(samples["bad_header"]["line"], 4, "{out}");
    assert_eq!(samples["outbound"]["line"], 5, "{out}");
    assert_eq!(v["rejected"]["untrusted"], 2);
    assert_eq!(samples.as_object().unwrap().len(), 3, "{out}");
    // The same in words with --explain.
    let (code, out, err) = scan(&["--explain", file], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("untrusted: 2 line(s), first at {file}:2: ")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "bad_header: 1 line(s), first at {file}:4: ?? what is this"
        )),
        "{out}"
    );
}

#[test]
fn gzip_and_stdin_give_the_same_answer_as_the_file() {
    let path = samples("kmsg-nmap-sS-seed-12ports.txt");
    let raw = std::fs::read(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("kmsg.txt.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(&raw).unwrap();
    enc.finish().unwrap();
    let ports = |out: &str| json(out)["scanners"][0]["ports"].clone();
    let (_, from_file, _) = scan(&["--json", &path], None);
    let (c1, from_gz, e1) = scan(&["--json", gz.to_str().unwrap()], None);
    let (c2, from_stdin, e2) = scan(&["--json", "-"], Some(&raw));
    assert_eq!((c1, c2), (0, 0), "{e1} {e2}");
    assert_eq!(ports(&from_file), 12);
    assert_eq!(ports(&from_gz), 12);
    assert_eq!(ports(&from_stdin), 12);
}

#[test]
fn an_unreadable_file_is_a_clear_error() {
    let (code, out, err) = scan(&["/nonexistent/kern.log"], None);
    assert_ne!(code, 0);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("/nonexistent/kern.log") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn the_seed_prefix_is_accepted_on_the_command_line() {
    let log = std::fs::read_to_string(samples("syslog-rfc3339-nmap-sS-seed-12ports.txt"))
        .unwrap()
        .replace("portwarden: ", "SYN_SCAN_ATTEMPT--");
    let (_, default_prefix, _) = scan(&["--json", "-"], Some(log.as_bytes()));
    assert_eq!(
        json(&default_prefix)["scanners"].as_array().unwrap().len(),
        0
    );
    let (code, out, err) = scan(
        &["--json", "--prefix", "SYN_SCAN_ATTEMPT--", "-"],
        Some(log.as_bytes()),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["scanners"][0]["ports"], 12, "{out}");
}

/// On a terminal (a pseudo-terminal made by util-linux `script`), `scan` draws a progress bar
/// with bytes, lines per second and the ETA on stderr; the other tests show that without a
/// terminal stderr stays empty.
#[test]
fn a_terminal_gets_a_progress_bar() {
    if !portwarden::netns::on_path("script") {
        let why = "a_terminal_gets_a_progress_bar: needs util-linux `script` on PATH";
        if std::env::var("PORTWARDEN_E2E").as_deref() == Ok("1") {
            panic!("PORTWARDEN_E2E=1 but {why}");
        }
        eprintln!("SKIPPED {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "{} scan {}",
        common::bin().display(),
        samples("syslog-rfc3339-nmap-sS-seed-12ports.txt")
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("PORTWARDEN_STATE_DIR", dir.path())
        .env("PORTWARDEN_CONFIG", "/dev/null")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("lines/s"), "no progress bar: {text}");
    assert!(text.contains("3.05 KiB/3.05 KiB"), "no byte count: {text}");
    assert!(text.contains("ETA"), "no ETA: {text}");
    assert!(text.contains("10.250.0.2  fast_scan"), "{text}");
}

//! A Prometheus scrape from inside a test's network namespace, in Rust: a thread joins the
//! namespace (`setns(2)` on `/run/netns/NAME`, which moves only that thread) and sends
//! `GET PATH` to the daemon's loopback endpoint with a std `TcpStream`; the host's own
//! namespace is never involved. Plus the lookup of one sample in the exposition.

#![allow(dead_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use portwarden::netns::Netns;

/// The whole HTTP answer (status line, headers, body) to `GET path` at `addr` inside `ns`.
pub fn get(ns: &Netns, addr: &str, path: &str) -> io::Result<String> {
    let ns_path = format!("/run/netns/{}", ns.name());
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
    let path = path.to_string();
    std::thread::spawn(move || -> io::Result<String> {
        let f = File::open(&ns_path)?;
        // SAFETY: setns on a file descriptor we own; it changes only this thread's network
        // namespace, and the thread ends with this closure.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
    .join()
    .map_err(|_| io::Error::other("the scrape thread panicked"))?
}

/// The body of a successful `GET /metrics` at `addr` inside `ns`.
pub fn metrics(ns: &Netns, addr: &str) -> io::Result<String> {
    let answer = get(ns, addr, "/metrics")?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other(format!("no HTTP head in {answer:?}")))?;
    if !head.starts_with("HTTP/1.0 200 ") {
        return Err(io::Error::other(format!("not 200: {head}")));
    }
    Ok(body.to_string())
}

/// The value of the first sample `name` whose labels include all of `labels`.
pub fn value(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition
        .lines()
        .filter_map(portwarden::metrics::parse_sample)
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
        })
        .map(|s| s.value)
}

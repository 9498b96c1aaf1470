//! The fleet over TLS (`rediss://`), end to end: a real `redis-server` from Debian serving only
//! TLS with a certificate signed by a throwaway authority (made here with `openssl`), in a
//! namespace of its own on a bridge with two hosts:
//!
//! - host A (daemon) and host B (daemon) trust that authority (`[fleet] ca_file`): a manual ban
//!   on A reaches B's kernel set through the stream;
//! - host C (cron mode) has no `ca_file`, so it trusts only the system's roots: its pass says
//!   the link failed and applies nothing (the certificate is verified, not merely used).
//!
//! Every wait has a deadline; nothing is timed.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::lab::{Background, Setup, banned4, wait_for};
use portwarden::netns::{Netns, Switch, unique_tag};

const NET: &str = "10.253.0";
const TLS_PORT: &str = "6391";
const PASSWORD: &str = "fleet-tls-test-password";
const KEY: &str = "fleet-tls-test-key-0123456789abcdef";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for `ip`, in `dir`: `ca.pem`, `server.pem`, `server.key`.
fn certificates(dir: &Path, ip: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=portwarden test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=redis",
        ],
    );
    std::fs::write(
        dir.join("san.ext"),
        format!("subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
}

fn start_redis(sw: &Switch, dir: &Path) -> Background {
    let mut cmd = sw.ns.command("redis-server");
    cmd.args([
        "--bind",
        &format!("{NET}.254"),
        "--port",
        "0",
        "--tls-port",
        TLS_PORT,
    ])
    .arg("--tls-cert-file")
    .arg(dir.join("server.pem"))
    .arg("--tls-key-file")
    .arg(dir.join("server.key"))
    .arg("--tls-ca-cert-file")
    .arg(dir.join("ca.pem"))
    .args(["--tls-auth-clients", "no", "--requirepass", PASSWORD])
    .args(["--save", "", "--appendonly", "no", "--dir"])
    .arg(dir);
    let r = Background::spawn("redis-server", &mut cmd, &dir.join("redis.log")).unwrap();
    let up = wait_for(Duration::from_secs(10), || {
        let out = sw
            .ns
            .command("redis-cli")
            .args(["--tls", "--cacert"])
            .arg(dir.join("ca.pem"))
            .args(["-h", &format!("{NET}.254"), "-p", TLS_PORT, "-a", PASSWORD])
            .args(["--no-auth-warning", "PING"])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        (String::from_utf8_lossy(&out.stdout).trim() == "PONG").then_some(())
    });
    assert!(up.is_some(), "redis (TLS) did not start:\n{}", r.output());
    r
}

#[test]
fn bans_cross_a_tls_link_and_an_untrusted_certificate_is_refused() {
    if !common::e2e_ready(
        "fleet_tls_e2e",
        &["nft", "ip", "redis-server", "redis-cli", "openssl"],
    ) {
        return;
    }
    let tag = unique_tag();
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path();
    certificates(dir, &format!("{NET}.254"));
    std::fs::write(dir.join("password"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(dir.join("key"), KEY).unwrap();
    let sw = Switch::create(&format!("pw-tl-{tag}-sw")).unwrap();
    sw.address(&format!("{NET}.254/24")).unwrap();
    let _redis = start_redis(&sw, dir);

    let stream = format!("pw:tls:{tag}");
    let host = |name: &str, n: u8, ca: bool| -> (Netns, Setup) {
        let ns = Netns::create(&format!("pw-tl-{tag}-{name}")).unwrap();
        sw.attach(&ns, "eth0", &format!("{NET}.{n}/24")).unwrap();
        let ca_line = if ca {
            format!("ca_file = \"{}\"\n", dir.join("ca.pem").display())
        } else {
            String::new()
        };
        let setup = Setup::new(&format!(
            "[[source]]\nkind = \"kmsg\"\npath = \"/dev/kmsg\"\n\n\
             [fleet]\nredis = \"rediss://{NET}.254:{TLS_PORT}/0\"\npassword_file = \"{pw}\"\n\
             key_file = \"{key}\"\nstream = \"{stream}\"\nhost_id = \"{name}\"\n{ca_line}",
            pw = dir.join("password").display(),
            key = dir.join("key").display(),
        ));
        setup.setup(&ns);
        (ns, setup)
    };
    let (a_ns, a) = host("A", 1, true);
    let (b_ns, b) = host("B", 2, true);
    let (c_ns, c) = host("C", 3, false);
    let mut da = a.daemon(&a_ns);
    let mut db = b.daemon(&b_ns);

    let target = "198.51.100.77";
    a.run(
        &a_ns,
        &["ban", target, "--for", "1h", "--reason", "tls test"],
    );
    let reached = wait_for(Duration::from_secs(20), || {
        banned4(&b_ns).iter().any(|x| x == target).then_some(())
    });
    assert!(
        reached.is_some(),
        "A's ban did not reach B over TLS:\nA:\n{}\nB:\n{}",
        da.output(),
        db.output()
    );

    // C trusts only the system's roots: the link fails, nothing is applied.
    let (summary, _) = c.run_once(&c_ns);
    let error = summary.0["fleet"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        !error.is_empty(),
        "C connected without trusting the CA: {}",
        summary.0
    );
    println!("C without the CA: {error}");
    assert!(
        !banned4(&c_ns).iter().any(|x| x == target),
        "C applied a ban from a link it cannot verify"
    );
    da.stop();
    db.stop();
}

//! The namespace harness every root-only test and the demo stand on: a `Lab` connects, and
//! dropping it removes both namespaces.

mod common;

use portwarden::netns::Lab;

fn namespaces() -> String {
    String::from_utf8_lossy(
        &std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list")
            .stdout,
    )
    .into_owned()
}

#[test]
fn lab_connects_over_v4_and_v6_and_cleans_up() {
    if !common::e2e_ready("lab_connects_over_v4_and_v6_and_cleans_up", &["ip", "ping"]) {
        return;
    }
    let lab = Lab::create("lab").expect("create lab");
    let (t, a) = (
        lab.target.name().to_string(),
        lab.attacker.name().to_string(),
    );
    assert!(namespaces().contains(&t) && namespaces().contains(&a));
    for v6 in [false, true] {
        let ip = lab.target_ip(v6).to_string();
        let out = lab
            .attacker
            .run("ping", ["-c1", "-W2", ip.as_str()])
            .expect("ping target from attacker");
        assert!(out.status.success());
    }
    drop(lab);
    let left = namespaces();
    assert!(
        !left.contains(&t) && !left.contains(&a),
        "namespaces left behind: {left}"
    );
}

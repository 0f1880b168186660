//! The customer's administrator with `pcap-portal` and an agent reading the grant from the
//! same file store: authorize, unauthorize, reauthorize, seen by the agent within moments.

use std::os::unix::fs::PermissionsExt;

use pcap_tests::{Scratch, run};

#[test]
fn keygen_writes_private_keys_0600_and_never_overwrites() {
    let s = Scratch::new("");
    for (name, mode) in [
        ("authorization.key", 0o600),
        ("request.key", 0o600),
        ("research.age", 0o600),
        ("authorization.pub", 0o644),
        ("research.age.pub", 0o644),
    ] {
        let meta = std::fs::metadata(s.path(&format!("keys/{name}"))).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
    }
    let recipient = std::fs::read_to_string(s.path("keys/research.age.pub")).unwrap();
    assert!(recipient.starts_with("age1"));
    let again = run(s.portal().args(["keygen", "--out"]).arg(s.path("keys")));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
}

#[test]
fn authorize_unauthorize_and_reauthorize_reach_the_agent() {
    let s = Scratch::new("");
    let agent = s.start_agent();
    assert_eq!(agent.auth_state(), "unauthorized");

    // The device has reported (its heartbeat), so it can be authorized by serial and name.
    assert!(pcap_tests::wait_until(
        std::time::Duration::from_secs(10),
        || s.path("store/devices/PA-0001/status.json").exists()
    ));
    let out = s.portal_ok(&["authorize", "PA-0001 e2e", "--period", "1m"]);
    assert!(out.contains("authorized PA-0001 (e2e) for 1m"), "{out}");
    let auth = agent.wait_auth("authorized");
    let first_expiry = auth["grant"]["expires_at"].as_str().unwrap().to_owned();
    assert_eq!(auth["grant"]["name"], "e2e");

    let out = s.portal_ok(&["unauthorize", "PA-0001"]);
    assert!(out.contains("unauthorized PA-0001 (sequence 2)"), "{out}");
    let auth = agent.wait_auth("revoked");
    assert_eq!(auth["sequence"], 2);

    // A revoked device must be authorized anew; reauthorize says so.
    let refused = run(s
        .portal()
        .args(["reauthorize", "PA-0001", "--period", "3m"]));
    assert!(!refused.status.success());
    s.portal_ok(&["authorize", "PA-0001 e2e", "--period", "1m"]);
    agent.wait_auth("authorized");

    s.portal_ok(&["reauthorize", "PA-0001", "--period", "3m"]);
    let mut auth = agent.wait_auth("authorized");
    assert!(pcap_tests::wait_until(
        std::time::Duration::from_secs(10),
        || {
            auth = agent.json("/v1/authorization");
            auth["grant"]["period"] == "3m"
        }
    ));
    let new_expiry = auth["grant"]["expires_at"].as_str().unwrap();
    assert!(
        new_expiry > first_expiry.as_str(),
        "{new_expiry} after {first_expiry}"
    );
    assert_eq!(auth["grant"]["sequence"], 4);
    assert_eq!(auth["grant"]["name"], "e2e", "the name carries over");

    let list = s.portal_ok(&["list"]);
    assert!(
        list.contains("PA-0001") && list.contains("3m") && list.contains("authorized"),
        "{list}"
    );
    let out = run(s.pcapctl().arg("authorization"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("period 3m, sequence 4"));
}

#[test]
fn unauthorize_takes_several_devices_and_names_the_unknown_ones() {
    let s = Scratch::new("");
    s.portal_ok(&[
        "authorize",
        "PA-0001",
        "--period",
        "unlimited",
        "--allow-unseen",
    ]);
    s.portal_ok(&["authorize", "PA-0002", "--period", "3m", "--allow-unseen"]);
    let out = run(s
        .portal()
        .args(["unauthorize", "PA-0001", "PA-0002", "PA-0404"]));
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("unauthorized PA-0001") && stdout.contains("unauthorized PA-0002"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PA-0404 has no grant"));
    let list = run(s.portal().args(["list", "--json"]));
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "revoked")
    );
}

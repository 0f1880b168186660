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

/// Runs `pcap-portal users ARGS` with `stdin` as its input.
fn users(s: &Scratch, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = s
        .portal()
        .arg("users")
        .args(args)
        .arg("--users")
        .arg(s.path("users.json"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn console_accounts_are_kept_as_argon2id_hashes_in_a_private_file() {
    let s = Scratch::new("");
    let add = |name: &str, role: &str, password: &str| {
        users(
            &s,
            &["add", name, "--role", role, "--password-stdin"],
            &format!("{password}\n"),
        )
    };
    assert!(
        add("alice", "admin", "correct horse battery")
            .status
            .success()
    );
    assert!(
        add("rita", "research", "another long password")
            .status
            .success()
    );
    let short = add("bob", "viewer", "short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12"));

    let file = s.path("users.json");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("$argon2id$") && !text.contains("correct horse"));

    let list = users(&s, &["list"], "");
    let out = String::from_utf8_lossy(&list.stdout);
    assert!(out.contains("alice") && out.contains("admin") && out.contains("research"));
    assert!(!out.contains("argon2"), "{out}");

    let check = |password: &str| {
        users(
            &s,
            &["check", "alice", "--password-stdin"],
            &format!("{password}\n"),
        )
        .status
        .success()
    };
    assert!(check("correct horse battery"));
    assert!(!check("correct horse battery!"));
    assert!(
        users(
            &s,
            &["passwd", "alice", "--password-stdin"],
            "a brand new password\n"
        )
        .status
        .success()
    );
    assert!(!check("correct horse battery"));
    assert!(check("a brand new password"));
    assert!(users(&s, &["remove", "rita"], "").status.success());
    let out = String::from_utf8_lossy(&users(&s, &["list"], "").stdout).into_owned();
    assert!(out.contains("alice") && !out.contains("rita"), "{out}");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = users(&s, &["list"], "");
    assert!(!open.status.success());
    assert!(String::from_utf8_lossy(&open.stderr).contains("chmod 600"));
}

#[test]
fn every_change_made_through_the_portal_is_in_the_audit_trail_newest_first() {
    let s = Scratch::new("");
    s.portal_ok(&[
        "authorize",
        "PA-0001 lab",
        "--period",
        "3m",
        "--allow-unseen",
    ]);
    s.portal_ok(&["reauthorize", "PA-0001", "--period", "1m"]);
    s.portal_ok(&["unauthorize", "PA-0001"]);
    let out = s.portal_ok(&["audit", "--json"]);
    let entries: serde_json::Value = serde_json::from_str(&out).unwrap();
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["unauthorize", "reauthorize", "authorize"],
        "{out}"
    );
    let first = &entries[2];
    assert_eq!(first["serial"], "PA-0001");
    assert_eq!(first["sequence"], 1);
    assert_eq!(first["period"], "3m");
    assert!(
        first["actor"].as_str().unwrap().starts_with("cli:"),
        "{first}"
    );
    assert_eq!(entries[0]["sequence"], 3);

    let table = s.portal_ok(&["audit", "--serial", "PA-0001", "--limit", "1"]);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.contains("unauthorize"), "{table}");
    let other = s.portal_ok(&["audit", "--serial", "PA-0404"]);
    assert_eq!(other.lines().count(), 1, "{other}");
}

// What a forger with write access to the store, or a compromised device, tries on the CLI.

/// Rewrites the heartbeat the agent left for `serial` with `edit`, as the device (or a
/// forger) could, at `devices/<at>/status.json`.
fn rewrite_heartbeat(
    s: &Scratch,
    serial: &str,
    at: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) {
    let from = s.path(&format!("store/devices/{serial}/status.json"));
    let mut heartbeat: serde_json::Value =
        serde_json::from_slice(&std::fs::read(from).unwrap()).unwrap();
    edit(&mut heartbeat);
    let dir = s.path(&format!("store/devices/{at}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("status.json"), heartbeat.to_string()).unwrap();
}

#[test]
fn a_forged_grant_gives_nothing_to_the_next_signed_one_and_an_absurd_sequence_is_refused() {
    let s = Scratch::new("");
    let agent = s.start_agent();
    assert!(pcap_tests::wait_until(
        std::time::Duration::from_secs(10),
        || s.path("store/devices/PA-0001/status.json").exists()
    ));
    s.forge_grant("PA-0001", "forged-name", 1000);
    let out = run(s.portal().args(["authorize", "PA-0001", "--period", "1m"]));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("does not verify"), "{stderr}");
    assert!(
        stdout.contains("authorized PA-0001 for 1m") && stdout.contains("(sequence 1)"),
        "{stdout}"
    );
    assert!(!stdout.contains("forged-name"), "{stdout}");
    let auth = agent.wait_auth("authorized");
    assert_eq!(auth["grant"]["sequence"], 1);
    assert!(auth["grant"]["name"].is_null(), "{auth}");
    drop(agent);

    // A device that claims to have accepted u64::MAX: refused, saying who claims it.
    rewrite_heartbeat(&s, "PA-0001", "PA-0001", |h| {
        h["authorization"]["sequence"] = serde_json::json!(u64::MAX);
    });
    let out = run(s.portal().args(["authorize", "PA-0001", "--period", "1m"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the device's heartbeat") && stderr.contains("18446744073709551615"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn store_text_never_puts_a_control_character_on_the_terminal_and_a_foreign_heartbeat_is_not_trusted()
 {
    let s = Scratch::new("");
    let agent = s.start_agent();
    assert!(pcap_tests::wait_until(
        std::time::Duration::from_secs(10),
        || s.path("store/devices/PA-0001/status.json").exists()
    ));
    drop(agent);
    let name = "evil\u{1b}[2J\u{1b}]0;owned\u{7}\u{9b}31m\u{202e}";
    rewrite_heartbeat(&s, "PA-0001", "PA-0001", |h| {
        h["name"] = serde_json::json!(name);
        h["authorization"]["reason"] = serde_json::json!("\u{1b}[31mred\r\nPA-9999 forged row");
    });
    // PA-0003's folder holds PA-0001's heartbeat.
    rewrite_heartbeat(&s, "PA-0001", "PA-0003", |_| {});
    // Authorized in the store while the device says otherwise: its reason is shown.
    s.portal_ok(&["authorize", "PA-0001", "--period", "1m"]);
    let hostile = |text: &str| {
        text.chars()
            .any(|c| (c.is_control() && c != '\n') || matches!(c, '\u{202a}'..='\u{202e}'))
    };

    let table = s.portal_ok(&["devices", "list"]);
    assert!(!hostile(&table), "{table:?}");
    assert!(table.contains("evil") && table.contains("red"), "{table}");
    assert!(!table.lines().any(|l| l.starts_with("PA-9999")), "{table}");
    let foreign = table.lines().find(|l| l.starts_with("PA-0003")).unwrap();
    assert!(foreign.contains("not trusted"), "{foreign}");

    // The JSON says the same document, written so that a terminal shows it safely.
    let json = s.portal_ok(&["devices", "list", "--json"]);
    assert!(!hostile(&json), "{json:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let row = |serial: &str| rows.iter().find(|r| r["serial"] == serial).unwrap();
    assert_eq!(row("PA-0001")["name"], name);
    let foreign = row("PA-0003");
    assert!(foreign["agent_version"].is_null(), "{foreign}");

    // Nor does a request refused by the device, nor an error naming it.
    let out = run(s.portal().args(["authorize", "PA-0003", "--period", "1m"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("not trusted"),
        "{stderr}"
    );
}

#[test]
fn a_capture_id_of_two_devices_is_refused_and_fetch_and_delete_never_touch_the_other_device() {
    let s = Scratch::new("");
    let id = "01930000-0000-7000-8000-000000000042";
    let plain = |n: u8| {
        let path = s.path(&format!("plain-{n}.pcap"));
        let frames: Vec<Vec<u8>> = (0..3)
            .map(|i| pcap_tests::pcapgen::udp4([10, 0, 0, n], [10, 0, 0, 2], 4000 + i, 53, b"q"))
            .collect();
        std::fs::write(&path, pcap_tests::pcapgen::pcap(1, &frames)).unwrap();
        path
    };
    let (one, two) = (plain(1), plain(2));
    s.store_capture("PA-0001", id, &one);
    s.store_capture("PA-0002", id, &two);

    let fetch = |target: &str, extra: &[&str], out: &str| {
        run(s
            .portal()
            .env("PCAP_RESEARCH_IDENTITY", s.path("keys/research.age"))
            .args(["captures", "fetch", target, "--out"])
            .arg(s.path(out))
            .args(extra))
    };
    let ambiguous = fetch(id, &[], "nowhere");
    let stderr = String::from_utf8_lossy(&ambiguous.stderr);
    assert!(!ambiguous.status.success());
    assert!(
        stderr.contains(&format!("PA-0001/{id}, PA-0002/{id}")) && stderr.contains("SERIAL/ID"),
        "{stderr}"
    );
    assert!(fetch(&format!("PA-0001/{id}"), &[], "one").status.success());
    assert_eq!(
        std::fs::read(s.path("one/000001.pcap")).unwrap(),
        std::fs::read(&one).unwrap()
    );
    assert!(fetch(id, &["--serial", "PA-0002"], "two").status.success());
    assert_eq!(
        std::fs::read(s.path("two/000001.pcap")).unwrap(),
        std::fs::read(&two).unwrap()
    );

    let delete = run(s.portal().args(["captures", "delete", id]));
    assert!(!delete.status.success());
    assert!(
        s.path(&format!("store/captures/PA-0001/{id}/manifest.json"))
            .exists()
    );
    assert!(
        s.path(&format!("store/captures/PA-0002/{id}/manifest.json"))
            .exists()
    );
    s.portal_ok(&["captures", "delete", &format!("PA-0002/{id}")]);
    assert!(
        !s.path(&format!("store/captures/PA-0002/{id}/manifest.json"))
            .exists()
    );
    assert!(
        s.path(&format!("store/captures/PA-0001/{id}/manifest.json"))
            .exists()
    );

    // A device's manifest that claims another device's capture is not trusted.
    let other = "01930000-0000-7000-8000-000000000043";
    s.store_capture("PA-0003", other, &two);
    let manifest = s.path(&format!("store/captures/PA-0003/{other}/manifest.json"));
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("\"PA-0003\"", "\"PA-0001\"");
    std::fs::write(&manifest, text).unwrap();
    let claimed = fetch(&format!("PA-0003/{other}"), &[], "three");
    let stderr = String::from_utf8_lossy(&claimed.stderr);
    assert!(
        !claimed.status.success() && stderr.contains("not trusted"),
        "{stderr}"
    );
}

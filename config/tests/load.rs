//! Loading the agent's config: defaults for a minimal file, and every problem of a bad file
//! reported at once with its key path and line.

use std::path::Path;
use std::time::Duration;

use pcap_config::{ConfigError, GrantSource, LogFormat, Problem, StoreUrl, parse};

struct Keys {
    _dir: tempfile::TempDir,
    verify_key: String,
    recipient: String,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let key = pcap_protocol::SigningKey::generate().unwrap();
    let path = dir.path().join("authorization.pub");
    std::fs::write(&path, key.verify_key().to_pem()).unwrap();
    Keys {
        verify_key: path.display().to_string(),
        recipient: age::x25519::Identity::generate().to_public().to_string(),
        _dir: dir,
    }
}

fn minimal(k: &Keys) -> String {
    format!(
        r#"[device]
serial = "PA-0001"

[authorization]
source = "file:///etc/pcap-agent/grant.json"
verify_key = "{}"

[upload]
recipients = ["{}"]

[capture]
interfaces = ["eth0"]
"#,
        k.verify_key, k.recipient
    )
}

#[test]
fn a_minimal_file_loads_with_defaults() {
    let k = keys();
    let config = parse(&minimal(&k)).unwrap();
    assert_eq!(config.device.serial.as_str(), "PA-0001");
    assert_eq!(
        config.authorization.source,
        GrantSource::File("/etc/pcap-agent/grant.json".into())
    );
    assert_eq!(config.authorization.poll_interval, Duration::from_secs(30));
    assert_eq!(
        config.upload.store,
        StoreUrl::File("/var/lib/pcap-agent/store".into())
    );
    assert_eq!(
        config.upload.store.to_string(),
        "file:///var/lib/pcap-agent/store"
    );
    assert_eq!(
        config.upload.nice, 19,
        "uploads yield to captures by default"
    );
    assert_eq!(
        config.control.socket,
        Path::new("/run/pcap-agent/control.sock")
    );
    assert_eq!(config.control.mode, 0o660);
    assert_eq!(config.paths.state_dir, Path::new("/var/lib/pcap-agent"));
    assert_eq!(config.paths.spool_dir, Path::new("/var/spool/pcap-agent"));
    assert_eq!(
        config.capture.defaults.max_duration,
        Some(Duration::from_secs(60))
    );
    assert_eq!(config.capture.ceilings.snaplen, Some(262_144));
    assert!(
        config.sharing == pcap_config::Sharing::ALL,
        "every field is shared by default"
    );
    assert_eq!(config.logging.format, LogFormat::Text);
    assert!(config.requests.is_none());
}

#[test]
fn every_problem_is_reported_at_once_with_key_path_and_line() {
    let k = keys();
    let text = format!(
        r#"[device]
name = "lab"

[authorization]
source = "file:///etc/pcap-agent/grant.json"
verify_key = "{}"
poll_intervall = "30s"

[upload]
recipients = ["{}"]

[capture]
interfaces = "eth0"
max_concurrent = 4
rotate_interval = "10 parsecs"
buffer_size = "lots"

[capture.defaults]
max_duration = "2h"

[capture.ceilings]
max_duration = "1h"
"#,
        k.verify_key, k.recipient
    );
    let problems = parse(&text).unwrap_err();
    let shown: Vec<String> = problems.iter().map(Problem::to_string).collect();
    let expect = [
        ("device.serial", 1, "is required"),
        ("authorization.poll_intervall", 7, "unknown field"),
        ("capture.interfaces", 13, "is a single value, not a list"),
        (
            "capture.rotate_interval",
            15,
            "\"10 parsecs\" is not a duration",
        ),
        ("capture.buffer_size", 16, "\"lots\" is not a size"),
        (
            "capture.defaults.max_duration",
            19,
            "above its ceiling capture.ceilings.max_duration",
        ),
    ];
    for (key, line, needle) in expect {
        assert!(
            problems
                .iter()
                .any(|p| p.key == key && p.line == Some(line) && p.message.contains(needle)),
            "expected {key} at line {line} containing {needle:?}, got:\n{}",
            shown.join("\n")
        );
    }
}

#[test]
fn a_syntax_error_names_its_line() {
    let problems = parse("[device]\nserial = \"x\"\n[capture\n").unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].line, Some(3), "{}", problems[0]);
    assert!(problems[0].message.contains("not valid TOML"));
}

#[test]
fn missing_keys_and_unsafe_values_are_explained() {
    let k = keys();
    let text = minimal(&k)
        .replace("serial = \"PA-0001\"", "serial = \"../etc\"")
        .replace(&k.verify_key, "/nonexistent/authorization.pub")
        .replace("[upload]\n", "[upload]\nnice = -5\n")
        + "\n[control]\nmode = 0o666\n[logging]\nlevel = \"loud\"\n"
        + "[sessions]\nmax_bytes = \"64KiB\"\ncommunity_id_seed = 70000\n";
    let problems = parse(&text).unwrap_err();
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "device.serial",
        "authorization.verify_key",
        "control.mode",
        "logging.level",
        "upload.nice",
        "sessions.max_bytes",
        "sessions.community_id_seed",
    ] {
        assert!(keys.contains(&key), "{key} not reported: {problems:?}");
    }
    let says = |key: &str, needle: &str| {
        problems
            .iter()
            .any(|p| p.key == key && p.message.contains(needle))
    };
    assert!(says("sessions.max_bytes", "at least 1MiB"), "{problems:?}");
    assert!(
        says("sessions.community_id_seed", "use 0 to 65535"),
        "{problems:?}"
    );
    let unreadable = problems
        .iter()
        .find(|p| p.key == "authorization.verify_key")
        .unwrap();
    assert!(
        unreadable
            .message
            .contains("/nonexistent/authorization.pub"),
        "{unreadable}"
    );
}

#[test]
fn the_example_config_in_the_repository_is_valid() {
    let k = keys();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/agent.example.toml"))
            .unwrap();
    let text = example
        .replace("/etc/pcap-agent/keys/authorization.pub", &k.verify_key)
        .replace("/etc/pcap-agent/keys/request.pub", &k.verify_key)
        .replace(
            "age1examplerecipientreplacewiththeresearchteamsrecipient",
            &k.recipient,
        );
    let config = parse(&text).unwrap_or_else(|p| panic!("{p:?}"));
    assert!(config.requests.is_some());
}

#[test]
fn load_reports_an_unreadable_file_with_its_path() {
    let err = pcap_config::load(Path::new("/nonexistent/agent.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/agent.toml"));
}

#[test]
fn a_single_value_where_a_list_belongs_is_one_problem_that_says_how_to_write_it() {
    let k = keys();
    let text = minimal(&k).replace(r#"interfaces = ["eth0"]"#, r#"interfaces = "lo""#);
    let problems = parse(&text).unwrap_err();
    assert_eq!(
        problems,
        [Problem {
            key: "capture.interfaces".into(),
            message: r#""lo" is a single value, not a list; write ["lo"]"#.into(),
            line: Some(12),
        }]
    );
}

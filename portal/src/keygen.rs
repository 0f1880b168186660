//! `pcap-portal keygen --out DIR`: the keys of both parties.
//!
//! ```text
//! authorization.key / .pub  Ed25519 (PEM PKCS#8 / SPKI)  the customer's administrator signs grants
//! request.key / .pub        Ed25519                      the research team signs capture requests
//! research.age / .age.pub   age X25519 identity / age1…  the research team decrypts captures
//! ```
//!
//! Private files are created 0600 and never overwritten.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use age::secrecy::ExposeSecret;
use anyhow::{Context, bail};
use pcap_protocol::SigningKey;

pub fn run(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let names = [
        "authorization.key",
        "authorization.pub",
        "request.key",
        "request.pub",
        "research.age",
        "research.age.pub",
    ];
    if let Some(existing) = names.iter().map(|n| out.join(n)).find(|p| p.exists()) {
        bail!(
            "{} already exists; keygen never overwrites keys (choose another --out)",
            existing.display()
        );
    }
    for party in ["authorization", "request"] {
        let key = SigningKey::generate()?;
        write(
            &out.join(format!("{party}.key")),
            key.to_pem().as_bytes(),
            0o600,
        )?;
        write(
            &out.join(format!("{party}.pub")),
            key.verify_key().to_pem().as_bytes(),
            0o644,
        )?;
        println!("{party}: key id {}", key.id());
    }
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let secret = format!(
        "# created: {}\n# public key: {recipient}\n{}\n",
        jiff::Timestamp::now(),
        identity.to_string().expose_secret()
    );
    write(&out.join("research.age"), secret.as_bytes(), 0o600)?;
    write(
        &out.join("research.age.pub"),
        format!("{recipient}\n").as_bytes(),
        0o644,
    )?;
    println!("research: age recipient {recipient}");
    println!("keys written to {}", out.display());
    Ok(())
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

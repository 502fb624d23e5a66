//! What the secure path needs, made on the spot: a throw-away CA, a server
//! certificate for `localhost` it signed, and a token file with one token
//! of a built-in role. Used by `cargo xtask demo` and `cargo xtask bench
//! secure`; nothing here is kept.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use auditrail_harness::ServerProcess;

/// The files of the secure path, and the token in clear (for the client).
pub(crate) struct Secure {
    /// The CA certificate clients trust.
    pub ca: PathBuf,
    /// The server's certificate (SAN `localhost`).
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// The token file (the token's SHA-256, name, group).
    pub tokens: PathBuf,
    /// The token.
    pub token: String,
}

impl Secure {
    /// The flags that make a server use these files.
    pub(crate) fn server_args(&self) -> Vec<&OsStr> {
        vec![
            OsStr::new("--tls-cert"),
            self.cert.as_os_str(),
            OsStr::new("--tls-key"),
            self.key.as_os_str(),
            OsStr::new("--auth-token-file"),
            self.tokens.as_os_str(),
        ]
    }
}

/// The `https://localhost:PORT` URL of `server` (its certificate names
/// `localhost`).
pub(crate) fn https_url(server: &ServerProcess) -> anyhow::Result<String> {
    let port = server
        .addr()
        .rsplit_once(':')
        .map(|(_, p)| p.to_owned())
        .context("no port in the server's address")?;
    Ok(format!("https://localhost:{port}"))
}

/// Writes the files into `dir`, the token's group being `role`.
pub(crate) fn make(dir: &Path, role: &str) -> anyhow::Result<Secure> {
    std::fs::create_dir_all(dir)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "auditrail throw-away CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate()?)?;
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&key, &ca)?;
    let token = format!("{role}-{}", std::process::id());
    let digest = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(token.as_bytes()))
    };
    let secure = Secure {
        ca: dir.join("ca.crt"),
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        tokens: dir.join("tokens.toml"),
        token,
    };
    std::fs::write(&secure.ca, ca.pem())?;
    std::fs::write(&secure.cert, cert.pem())?;
    std::fs::write(&secure.key, key.serialize_pem())?;
    std::fs::write(
        &secure.tokens,
        format!("[[token]]\nname = \"{role}\"\nsha256 = \"{digest}\"\ngroups = [\"{role}\"]\n"),
    )?;
    Ok(secure)
}

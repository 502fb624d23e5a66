//! The `[console]` configuration table: where the console listens for
//! browsers, where it finds the services it shows, and how long a
//! sign-in lasts.
//!
//! The console holds no identity of its own: every call it makes carries
//! the signed-in user's bearer token, so a user sees exactly what their
//! permissions allow and the access trail names the user, not the
//! console. Its client settings are therefore TLS only; a `token_file`
//! there is refused.

use std::net::SocketAddr;

use auditrail_server::client::ClientConfig;
use auditrail_server::ports;
use serde::{Deserialize, Serialize};

/// The console's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The address the console's HTTP server listens on (pages and the
    /// JSON API under `/api/v1`).
    pub listen: String,
    /// gRPC address of the query service (timeline, events, histories,
    /// diffs, exports). When the process also runs it, its own address is
    /// used instead; the same for the three below.
    pub query_url: String,
    /// gRPC address of the reporter (the reports page).
    pub reporter_url: String,
    /// gRPC address of the ingestor (sources, lag, dead letters).
    pub ingestor_url: String,
    /// gRPC address of the indexer (store size per cluster and type).
    pub indexer_url: String,
    /// TLS towards those services (`tls_ca`, and `tls_cert`/`tls_key`
    /// under mTLS). Identity is each user's own token, never the
    /// console's: `token_file` is refused.
    #[serde(skip_serializing_if = "ClientConfig::is_empty")]
    pub client: ClientConfig,
    /// Minutes a sign-in lasts.
    pub session_ttl_mins: u64,
    /// Signed-in sessions held at once, at most; a sign-in beyond it is
    /// refused with 503 until one ends or expires.
    pub max_sessions: usize,
}

/// The console's default HTTP port.
pub const DEFAULT_HTTP_PORT: u16 = 8080;

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: format!("127.0.0.1:{DEFAULT_HTTP_PORT}"),
            query_url: ports::local_url(ports::QUERY),
            reporter_url: ports::local_url(ports::REPORTER),
            ingestor_url: ports::local_url(ports::INGESTOR),
            indexer_url: ports::local_url(ports::INDEXER),
            client: ClientConfig::default(),
            session_ttl_mins: 8 * 60,
            max_sessions: 10_000,
        }
    }
}

/// A setting out of its range.
#[derive(Debug, thiserror::Error)]
#[error("[console] {key} = {value}: {why}")]
pub struct SettingsError {
    /// The key.
    pub key: &'static str,
    /// Its value.
    pub value: String,
    /// What is allowed.
    pub why: String,
}

impl Settings {
    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |key, value: &dyn std::fmt::Display, why: &str| SettingsError {
            key,
            value: value.to_string(),
            why: why.to_owned(),
        };
        self.listen_addr()?;
        if self.session_ttl_mins == 0 || self.session_ttl_mins > 7 * 24 * 60 {
            return Err(bad(
                "session_ttl_mins",
                &self.session_ttl_mins,
                "must be between 1 and 10080 (7 days)",
            ));
        }
        if self.max_sessions == 0 {
            return Err(bad("max_sessions", &0, "must be at least 1"));
        }
        if let Some(path) = &self.client.token_file {
            return Err(bad(
                "client.token_file",
                &format!("{:?}", path.display()),
                "the console calls the services with each signed-in user's own token and \
                 has none of its own; remove it",
            ));
        }
        Ok(())
    }

    /// `listen` as an address.
    pub fn listen_addr(&self) -> Result<SocketAddr, SettingsError> {
        self.listen.parse().map_err(|_| SettingsError {
            key: "listen",
            value: format!("{:?}", self.listen),
            why: "must be IP:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_their_key() {
        assert!(Settings::default().validate().is_ok());
        let err = Settings {
            listen: "localhost".to_owned(),
            ..Settings::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("[console] listen = \"localhost\""), "{err}");
        let err = Settings {
            session_ttl_mins: 0,
            ..Settings::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("session_ttl_mins = 0"), "{err}");
        let err = Settings {
            client: ClientConfig {
                token_file: Some("/t".into()),
                ..ClientConfig::default()
            },
            ..Settings::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("client.token_file"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<Settings>("listen = \"127.0.0.1:1\"\nlisen = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `lisen`"), "{err}");
    }
}

//! Bearer tokens, checked against a file of their SHA-256 digests.
//!
//! The file names each token's owner and groups; the token itself is never
//! written down, logged or kept in memory beyond the call that carries it:
//!
//! ```toml
//! [[token]]
//! name = "alice"
//! sha256 = "<64 hex digits: printf %s TOKEN | sha256sum>"
//! groups = ["viewer"]
//! ```
//!
//! Every entry is compared, in constant time, whatever matches first, so
//! the time of an answer says nothing about which digest came close.

use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::{AccessError, Identity, Via};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    sha256: String,
    #[serde(default)]
    groups: Vec<String>,
}

/// The tokens a server accepts.
#[derive(Clone, Default)]
pub struct TokenFile {
    entries: Vec<(String, [u8; 32], Vec<String>)>,
}

impl std::fmt::Debug for TokenFile {
    // Digests are not secrets, but there is no reason to print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFile")
            .field(
                "names",
                &self.entries.iter().map(|(n, _, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl TokenFile {
    /// Reads a token file's text; `what` names it in errors. A bad entry
    /// refuses the whole file (a server keeps the tokens it had).
    pub fn parse(what: &str, text: &str) -> Result<Self, AccessError> {
        let invalid = |reason: String| AccessError::Invalid {
            what: what.to_owned(),
            reason,
        };
        let file: File = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut entries = Vec::with_capacity(file.token.len());
        for (i, entry) in file.token.into_iter().enumerate() {
            let place = format!("token {} ({:?})", i + 1, entry.name);
            if entry.name.trim().is_empty() {
                return Err(invalid(format!("token {} has no name", i + 1)));
            }
            let digest: [u8; 32] = hex::decode(entry.sha256.trim())
                .ok()
                .and_then(|d| d.try_into().ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "{place}: sha256 must be 64 hex digits (the SHA-256 of the token), not \
                         the token itself"
                    ))
                })?;
            if entries.iter().any(|(_, d, _)| *d == digest) {
                return Err(invalid(format!("{place}: the same token is listed twice")));
            }
            entries.push((entry.name, digest, entry.groups));
        }
        Ok(Self { entries })
    }

    /// How many tokens it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The identity of `token`, if it is one of the file's.
    pub fn verify(&self, token: &str) -> Option<Identity> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (name, expected, groups) in &self.entries {
            if bool::from(digest.ct_eq(expected)) {
                found = Some(Identity {
                    name: name.clone(),
                    groups: groups.clone(),
                    via: Via::Token,
                });
            }
        }
        found
    }
}

/// The hex SHA-256 of `token`, as a token file lists it.
pub fn digest_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_known_by_their_digest_only() {
        let text = format!(
            "[[token]]\nname = \"alice\"\nsha256 = \"{}\"\ngroups = [\"viewer\"]\n\n\
             [[token]]\nname = \"ingestor\"\nsha256 = \"{}\"\ngroups = [\"ingestor\"]\n",
            digest_hex("s3cret-alice"),
            digest_hex("s3cret-ingestor").to_uppercase()
        );
        let file = TokenFile::parse("tokens.toml", &text).expect("valid");
        assert_eq!(file.len(), 2);
        let alice = file.verify("s3cret-alice").expect("alice");
        assert_eq!((alice.name.as_str(), alice.via), ("alice", Via::Token));
        assert_eq!(alice.groups, vec!["viewer".to_owned()]);
        assert_eq!(
            file.verify("s3cret-ingestor").expect("ingestor").name,
            "ingestor"
        );
        assert!(file.verify("s3cret-alic").is_none());
        assert!(file.verify("").is_none());
        assert!(!format!("{file:?}").contains(&digest_hex("s3cret-alice")));
    }

    #[test]
    fn bad_files_say_what_and_where() {
        let err = TokenFile::parse(
            "t.toml",
            "[[token]]\nname = \"bob\"\nsha256 = \"hunter2\"\n",
        )
        .expect_err("a clear token");
        assert!(err.to_string().contains("token 1 (\"bob\")"), "{err}");
        assert!(err.to_string().contains("64 hex digits"), "{err}");
        let err = TokenFile::parse("t.toml", "[[token]]\nname = \"bob\"\nsha = \"x\"\n")
            .expect_err("unknown key");
        assert!(err.to_string().starts_with("t.toml:"), "{err}");
        let twice = format!(
            "[[token]]\nname = \"a\"\nsha256 = \"{0}\"\n[[token]]\nname = \"b\"\nsha256 = \"{0}\"\n",
            digest_hex("x")
        );
        let err = TokenFile::parse("t.toml", &twice).expect_err("twice");
        assert!(err.to_string().contains("listed twice"), "{err}");
        let err = TokenFile::parse("t.toml", "[[token]]\nname = \"\"\nsha256 = \"00\"\n")
            .expect_err("no name");
        assert!(err.to_string().contains("no name"), "{err}");
        assert!(TokenFile::parse("t.toml", "").expect("empty").is_empty());
    }
}

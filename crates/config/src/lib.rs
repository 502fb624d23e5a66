//! Layered configuration shared by every auditrail binary.
//!
//! Operators configure a service in whichever way suits the deployment: a TOML
//! file (a ConfigMap in Kubernetes), environment variables (a Helm value), or
//! flags (a laptop). The layers stack in that order, each overriding the one
//! before, on top of the service's compiled-in defaults:
//!
//! ```text
//! defaults  <  --config FILE (TOML)  <  AUDITRAIL_* environment  <  flags
//! ```
//!
//! Environment variables use `__` for nesting: `AUDITRAIL_LOG__LEVEL=debug`
//! sets `log.level`. The configuration types refuse unknown keys, so a
//! misspelt key in the file or a misspelt `AUDITRAIL_…` variable stops the
//! start instead of being ignored. Every error names the key, the value,
//! the layer it came from (the file, the exact variable, the flags) and,
//! for an unknown key, the closest known one.
//!
//! This crate knows nothing of the keys themselves: the composing layer
//! gives it the defaults and the flags as typed values.

mod errors;

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The environment variable prefix of every auditrail setting.
pub const ENV_PREFIX: &str = "AUDITRAIL_";

/// `AUDITRAIL_*` variables that are not server configuration: what the
/// clients read (`AUDITRAIL_SERVER`, the server a command asks;
/// `AUDITRAIL_TOKEN`, `AUDITRAIL_TOKEN_FILE`) and what the tests pass to
/// each other (`AUDITRAIL_MOTO_SERVER`, the browser's paths). A user who exports them for the
/// CLI starts servers in the same shell; they must never be read as the
/// `[server]` table or anything else.
pub const NOT_CONFIGURATION: &[&str] = &[
    "AUDITRAIL_SERVER",
    "AUDITRAIL_TOKEN",
    "AUDITRAIL_TOKEN_FILE",
    "AUDITRAIL_MOTO_SERVER",
    "AUDITRAIL_CHROMIUM",
    "AUDITRAIL_CHROMEDRIVER",
    "AUDITRAIL_NO_BROWSER",
    "AUDITRAIL_TANTIVY_CRASH_CHILD_DIR",
];

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--config` named a file that does not exist.
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    /// An environment variable's value nests `[` and `{` deeper than any
    /// setting does. Refused before it is parsed: the parser of environment
    /// values recurses once per level, and a deep enough value overflows
    /// the stack (the process aborts instead of reporting an error).
    #[error(
        "invalid configuration: environment variable {variable} nests '[' and '{{' more than {max} levels deep"
    )]
    TooDeep {
        /// The variable, as set.
        variable: String,
        /// The limit ([`MAX_ENV_DEPTH`]).
        max: usize,
    },
    /// An environment variable's value holds a backslash after non-ASCII
    /// text. figment's reader of environment values takes such a value
    /// apart by character and byte positions mixed up and panics; it is
    /// refused before it is read.
    #[error(
        "invalid configuration: environment variable {variable} holds a backslash after \
         non-ASCII text, which the configuration reader cannot take; remove the backslash or \
         set the value in the configuration file"
    )]
    UnreadableEnv {
        /// The variable, as set.
        variable: String,
    },
    /// A layer held an unknown key, a value of the wrong type or shape, or
    /// the TOML did not parse.
    /// The message names each key, its value and where it was set.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// A provider under the name an operator knows it by: figment names
/// serialized values after the line of our code that made them
/// (`crates/config/src/lib.rs:107`), which means nothing to an operator.
struct Named<P> {
    name: &'static str,
    inner: P,
}

impl<P: Provider> Provider for Named<P> {
    fn metadata(&self) -> Metadata {
        let mut metadata = self.inner.metadata();
        metadata.name = self.name.into();
        if matches!(metadata.source, Some(figment::Source::Code(_))) {
            metadata.source = None;
        }
        metadata
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.inner.data()
    }
}

/// What the defaults layer is called in messages.
pub const DEFAULTS: &str = "built-in defaults";
/// What the flags layer is called in messages.
pub const FLAGS: &str = "command-line flags";

/// The deepest nesting of `[` and `{` accepted in an environment value; a
/// setting needs two or three levels.
pub const MAX_ENV_DEPTH: usize = 32;

/// How deeply `value` nests `[` and `{` outside double-quoted strings, as
/// figment's parser of environment values reads them.
fn env_depth(value: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut quoted, mut escaped) = (false, false);
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ if quoted => {}
            '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Why an environment value is kept away from figment's reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnvProblem {
    /// It nests deeper than [`MAX_ENV_DEPTH`].
    TooDeep,
    /// A backslash after non-ASCII text (figment panics on it).
    BackslashAfterNonAscii,
}

fn env_problem(value: &str) -> Option<EnvProblem> {
    if env_depth(value) > MAX_ENV_DEPTH {
        return Some(EnvProblem::TooDeep);
    }
    let backslash = value.find('\\')?;
    (!value[..backslash].is_ascii()).then_some(EnvProblem::BackslashAfterNonAscii)
}

/// A configuration under construction, layer by layer.
#[derive(Debug, Clone)]
pub struct Layers {
    figment: Figment,
    /// The first environment variable refused by [`Layers::env_prefixed`],
    /// and why, reported by [`Layers::extract`].
    refused_env: Option<(String, EnvProblem)>,
}

impl Layers {
    /// Starts from the service's defaults.
    pub fn new<T: Serialize>(defaults: &T) -> Self {
        Self {
            figment: Figment::from(Named {
                name: DEFAULTS,
                inner: Serialized::defaults(defaults),
            }),
            refused_env: None,
        }
    }

    /// Adds a TOML file, when one is named. A named file that does not exist
    /// is an error: silently running on defaults would hide a typo.
    pub fn file(mut self, path: Option<&Path>) -> Result<Self, ConfigError> {
        if let Some(path) = path {
            if !path.is_file() {
                return Err(ConfigError::MissingFile(path.to_owned()));
            }
            self.figment = self.figment.merge(Toml::file_exact(path));
        }
        Ok(self)
    }

    /// Adds the `AUDITRAIL_*` environment variables (`__` separates levels).
    #[must_use]
    pub fn env(self) -> Self {
        self.env_prefixed(ENV_PREFIX)
    }

    /// Adds environment variables with another prefix (used by tests).
    /// A variable whose value nests deeper than [`MAX_ENV_DEPTH`], or holds
    /// a backslash after non-ASCII text, is left out of the layer and
    /// reported by [`Layers::extract`].
    #[must_use]
    pub fn env_prefixed(mut self, prefix: &str) -> Self {
        // Keys as figment matches them: the prefix case-insensitively,
        // then the rest of the name.
        let mut refused: Vec<(String, EnvProblem)> = std::env::vars_os()
            .filter_map(|(key, value)| {
                let key = key.into_string().ok()?;
                let head = key.get(..prefix.len())?;
                if !head.eq_ignore_ascii_case(prefix) {
                    return None;
                }
                env_problem(&value.to_string_lossy()).map(|problem| (key, problem))
            })
            .collect();
        refused.sort_by(|a, b| a.0.cmp(&b.0));
        let skipped: Vec<String> = refused
            .iter()
            .filter_map(|(key, _)| key.get(prefix.len()..))
            .map(str::to_ascii_lowercase)
            .collect();
        let auditrail_prefix = prefix.eq_ignore_ascii_case(ENV_PREFIX);
        let not_configuration: Vec<String> = NOT_CONFIGURATION
            .iter()
            .filter_map(|name| name.get(ENV_PREFIX.len()..))
            .map(str::to_ascii_lowercase)
            .collect();
        let env = Env::prefixed(prefix)
            .filter(move |key| {
                let key = key.as_str().to_ascii_lowercase();
                let client_variable = auditrail_prefix && not_configuration.contains(&key);
                !skipped.contains(&key) && !client_variable
            })
            .split("__");
        self.figment = self.figment.merge(env);
        if self.refused_env.is_none() {
            self.refused_env = refused.into_iter().next();
        }
        self
    }

    /// Adds the command-line flags: `overrides` serializes to the keys the
    /// flags set, in the configuration's own shape (a typed struct whose
    /// absent flags serialize to nothing), so no key is spelt as a string.
    #[must_use]
    pub fn flags<T: Serialize>(mut self, overrides: &T) -> Self {
        self.figment = self.figment.merge(Named {
            name: FLAGS,
            inner: Serialized::defaults(overrides),
        });
        self
    }

    /// Deserialises the stacked layers into the service's configuration type.
    pub fn extract<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        match &self.refused_env {
            Some((variable, EnvProblem::TooDeep)) => {
                return Err(ConfigError::TooDeep {
                    variable: variable.clone(),
                    max: MAX_ENV_DEPTH,
                });
            }
            Some((variable, EnvProblem::BackslashAfterNonAscii)) => {
                return Err(ConfigError::UnreadableEnv {
                    variable: variable.clone(),
                });
            }
            None => {}
        }
        self.figment
            .extract()
            .map_err(|err| ConfigError::Invalid(errors::describe(&err, &self.figment)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::net::SocketAddr;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Server {
        listen: SocketAddr,
        workers: u16,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        server: Server,
        name: String,
    }

    /// Flags in the shape of [`Cfg`]; an absent flag serializes to nothing.
    #[derive(Debug, Default, Serialize)]
    struct Flags {
        #[serde(skip_serializing_if = "Option::is_none")]
        server: Option<ServerFlags>,
    }

    #[derive(Debug, Default, Serialize)]
    struct ServerFlags {
        #[serde(skip_serializing_if = "Option::is_none")]
        listen: Option<SocketAddr>,
        #[serde(skip_serializing_if = "Option::is_none")]
        workers: Option<u16>,
    }

    fn defaults() -> Cfg {
        Cfg {
            server: Server {
                listen: "127.0.0.1:1".parse().unwrap(),
                workers: 2,
            },
            name: "d".into(),
        }
    }

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "name = \"file\"\n[server]\nworkers = 7\n").unwrap();
        // A prefix no variable has: the environment layer is exercised through
        // real process environments in the integration tests.
        let prefix = "AUDITRAIL_TEST_UNSET_PREFIX_";
        let layers = Layers::new(&defaults())
            .file(Some(&file))
            .unwrap()
            .env_prefixed(prefix);
        let cfg: Cfg = layers.extract().unwrap();
        assert_eq!(cfg.name, "file");
        assert_eq!(cfg.server.workers, 7);
        assert_eq!(cfg.server.listen, defaults().server.listen);

        let flags = Flags {
            server: Some(ServerFlags {
                listen: Some("127.0.0.1:9".parse().unwrap()),
                workers: None,
            }),
        };
        let cfg: Cfg = layers.clone().flags(&flags).extract().unwrap();
        assert_eq!(cfg.server.listen.port(), 9);
        assert_eq!(
            cfg.server.workers, 7,
            "an absent flag leaves the file value"
        );
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = Layers::new(&defaults())
            .file(Some(Path::new("/nonexistent/auditrail.toml")))
            .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/auditrail.toml"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_the_key_and_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[server]\nlisten = \"not an address\"\n").unwrap();
        let err = Layers::new(&defaults())
            .file(Some(&file))
            .unwrap()
            .extract::<Cfg>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.listen"), "{err}");
        assert!(err.contains("c.toml"), "{err}");
        assert!(err.contains("\"not an address\""), "the value: {err}");

        std::fs::write(&file, "name = 7\n").unwrap();
        let err = Layers::new(&defaults())
            .file(Some(&file))
            .unwrap()
            .extract::<Cfg>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("name (in file"), "{err}");
        assert!(err.contains("signed int `7`"), "{err}");
        assert!(
            !err.contains("src/lib.rs"),
            "no source location of ours: {err}"
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_the_closest_known_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[server]\nworkerz = 3\n").unwrap();
        let err = Layers::new(&defaults())
            .file(Some(&file))
            .unwrap()
            .extract::<Cfg>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key server.workerz (in file"), "{err}");
        assert!(err.contains("c.toml"), "{err}");
        assert!(err.contains("did you mean workers?"), "{err}");

        std::fs::write(&file, "colour = \"blue\"\n").unwrap();
        let err = Layers::new(&defaults())
            .file(Some(&file))
            .unwrap()
            .extract::<Cfg>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key colour"), "{err}");
        assert!(!err.contains("did you mean"), "nothing is close: {err}");
        assert!(err.contains("known keys here: server, name"), "{err}");
    }

    #[test]
    fn broken_toml_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[server\n").unwrap();
        let err = Layers::new(&defaults())
            .file(Some(&file))
            .unwrap()
            .extract::<Cfg>()
            .unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(_)));
    }
}

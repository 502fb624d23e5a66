//! Property-based fuzzing of layered configuration: TOML files and
//! `AUDITRAIL_*`-style environment variables, generated and mutated, stacked
//! over defaults. Runs 64 cases per property by default (each sets real
//! environment variables and files in a `figment::Jail`);
//! `PROPTEST_CASES=100000 cargo test -p auditrail-config fuzz` runs more.

// `figment::Jail` closures return `figment::Error`, which is large.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;

use auditrail_config::{ConfigError, Layers, MAX_ENV_DEPTH};
use figment::Jail;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "AUDITRAIL_FUZZ_";

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Server {
    listen: SocketAddr,
    metrics: bool,
    shutdown_grace_secs: u64,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Log {
    level: String,
    format: String,
}

/// The shape of a service's configuration.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Cfg {
    server: Server,
    log: Log,
    retention_days: u32,
    paths: Vec<String>,
    extra: Option<std::collections::BTreeMap<String, String>>,
}

fn defaults() -> Cfg {
    Cfg {
        server: Server {
            listen: "127.0.0.1:50051".parse().expect("address"),
            metrics: true,
            shutdown_grace_secs: 10,
        },
        log: Log {
            level: "info".to_owned(),
            format: "text".to_owned(),
        },
        retention_days: 30,
        paths: vec!["/var/log/audit.log".to_owned()],
        extra: None,
    }
}

const TOML_SEED: &str = "retention_days = 7\npaths = [\"/a\", \"/b\"]\n\n[server]\nlisten = \"0.0.0.0:9000\"\nmetrics = false\n\n[log]\nlevel = \"debug\"\nformat = \"json\"\n\n[extra]\nk = \"v\"\n";

const TOML_SNIPPETS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "\\",
    "\\u",
    "#",
    "\n",
    ",",
    ".",
    "inf",
    "nan",
    "1e999",
    "99999999999999999999",
    "-1",
    "true",
    "1979-05-27T07:32:00Z",
    "server.listen = 1\n",
    "[server]\n",
    "[[paths]]\n",
    "x = [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]\n",
    "\u{0}",
    "é",
];

fn toml_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop::sample::select(TOML_SNIPPETS)
            ),
            0..5
        )
        .prop_map(|inserts| {
            let mut text = TOML_SEED.to_owned();
            for (at, snippet) in inserts {
                let mut at = at.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.insert_str(at, snippet);
            }
            text
        }),
        ".{0,60}",
        (1..3000usize, prop::sample::select(&["[", "{a=", "[[]"][..]))
            .prop_map(|(n, open)| format!("x = {}", open.repeat(n))),
    ]
}

const KEYS: &[&str] = &[
    "SERVER__LISTEN",
    "SERVER__METRICS",
    "SERVER__SHUTDOWN_GRACE_SECS",
    "LOG__LEVEL",
    "LOG__FORMAT",
    "RETENTION_DAYS",
    "PATHS",
    "EXTRA",
    "EXTRA__K",
    "SERVER",
    "SERVER____LISTEN",
    "__",
    "X__Y__Z",
];

fn env_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "",
                "1",
                "-1",
                "true",
                "0.0.0.0:1",
                "[1, 2]",
                "[\"a\"]",
                "{k = \"v\"}",
                "{",
                "[",
                "\"",
                "'x'",
                "1e999",
                "99999999999999999999",
                "[[[[",
                "{{{{",
                "nan",
            ][..]
        )
        .prop_map(str::to_owned),
        "[^\u{0}]{0,20}",
        (
            1..100_000usize,
            prop::sample::select(&["[", "{a=", "[["][..])
        )
            .prop_map(|(n, open)| open.repeat(n)),
    ]
}

/// What every answer must be: a configuration or an error that says
/// something.
fn check(result: Result<Cfg, ConfigError>) {
    if let Err(err) = result {
        let shown = err.to_string();
        assert!(shown.starts_with("invalid configuration: "), "{shown}");
        assert!(shown.len() > "invalid configuration: ".len());
    }
}

/// Whether a value is refused for its depth.
fn too_deep(result: &Result<Cfg, ConfigError>) -> bool {
    matches!(result, Err(ConfigError::TooDeep { .. }))
}

/// Whether a variable was refused before figment read it (for its depth,
/// or for another variable the reader cannot take, reported first).
fn refused_before_reading(result: &Result<Cfg, ConfigError>) -> bool {
    matches!(
        result,
        Err(ConfigError::TooDeep { .. } | ConfigError::UnreadableEnv { .. })
    )
}

proptest! {
    #![proptest_config(config())]

    /// A TOML file, mutated or deeply nested, over the defaults.
    #[test]
    fn fuzz_config_toml(text in toml_text()) {
        Jail::expect_with(|jail| {
            jail.create_file("auditrail.toml", &text)?;
            let path = jail.directory().join("auditrail.toml");
            let layers = Layers::new(&defaults()).file(Some(&path)).expect("the file exists");
            check(layers.extract());
            Ok(())
        });
    }

    /// Environment variables with odd keys and values (nested, unbalanced,
    /// huge), over the defaults and a file.
    #[test]
    fn fuzz_config_env(vars in prop::collection::vec((prop::sample::select(KEYS), env_value()), 0..4)) {
        Jail::expect_with(|jail| {
            jail.create_file("auditrail.toml", TOML_SEED)?;
            let path = jail.directory().join("auditrail.toml");
            for (key, value) in &vars {
                jail.set_env(format!("{PREFIX}{key}"), value);
            }
            let layers = Layers::new(&defaults())
                .file(Some(&path))
                .expect("the file exists")
                .env_prefixed(PREFIX);
            let result = layers.extract();
            // The value a key has last is the one set.
            let set: std::collections::BTreeMap<_, _> = vars.iter().cloned().collect();
            let deep = set.values().any(|v| {
                v.matches(['[', '{']).count() > 2 * MAX_ENV_DEPTH && !v.contains(['"', ']', '}'])
            });
            assert!(!deep || refused_before_reading(&result), "{result:?}");
            check(result);
            Ok(())
        });
    }
}

/// Regression inputs found while fuzzing, as plain tests.
mod found {
    use super::*;

    /// Found by `fuzz_config_env` in CI: a value with a backslash after
    /// non-ASCII text made figment's escape reader slice a string by a
    /// character position, panicking at start.
    #[test]
    fn a_backslash_after_non_ascii_text_is_an_error_not_a_panic() {
        Jail::expect_with(|jail| {
            jail.set_env(format!("{PREFIX}LOG__LEVEL"), "<.\u{433c9}T\u{e7611}\\/");
            let err = Layers::new(&defaults())
                .env_prefixed(PREFIX)
                .extract::<Cfg>()
                .expect_err("unreadable");
            assert!(
                matches!(&err, ConfigError::UnreadableEnv { variable } if variable.ends_with("LOG__LEVEL")),
                "{err}"
            );
            assert!(
                err.to_string()
                    .contains("holds a backslash after non-ASCII text")
            );
            Ok(())
        });
    }

    /// Found by `fuzz_config_env`: `AUDITRAIL_X=[[[[…` (some thousands
    /// deep) overflowed the stack in figment's parser of environment
    /// values, aborting the process instead of reporting an error.
    #[test]
    fn a_deeply_nested_environment_value_is_an_error() {
        Jail::expect_with(|jail| {
            jail.set_env(format!("{PREFIX}LOG__LEVEL"), "[".repeat(100_000));
            jail.set_env(format!("{PREFIX}RETENTION_DAYS"), "3");
            let err = Layers::new(&defaults())
                .env_prefixed(PREFIX)
                .extract::<Cfg>()
                .expect_err("too deep");
            assert!(too_deep(&Err(err)));
            let err = Layers::new(&defaults())
                .env_prefixed(PREFIX)
                .extract::<Cfg>()
                .expect_err("too deep")
                .to_string();
            assert!(err.contains("AUDITRAIL_FUZZ_LOG__LEVEL"), "{err}");
            assert!(err.contains("more than 32 levels deep"), "{err}");
            Ok(())
        });
    }

    /// Values that nest as settings do still load.
    #[test]
    fn ordinary_nested_values_load() {
        Jail::expect_with(|jail| {
            jail.set_env(format!("{PREFIX}PATHS"), "[\"/a\", \"/b\"]");
            jail.set_env(format!("{PREFIX}EXTRA"), "{k = \"[[[[\"}");
            let cfg: Cfg = Layers::new(&defaults())
                .env_prefixed(PREFIX)
                .extract()
                .expect("loads");
            assert_eq!(cfg.paths, ["/a", "/b"]);
            assert_eq!(cfg.extra.expect("extra")["k"], "[[[[");
            Ok(())
        });
    }
}

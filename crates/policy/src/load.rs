//! Turning policy text into a [`Policy`], with kube-apiserver's loader checks.
//!
//! kube-apiserver (`k8s.io/apiserver/pkg/audit/policy/reader.go`) decodes the
//! file, refuses unknown group/versions, validates, and refuses a policy with
//! zero rules. It first tries strict decoding and, if that only fails because
//! of unknown or duplicate fields, falls back to lenient decoding and logs a
//! warning. This module does the same minus validation (see
//! [`Policy::validate`]): unknown fields are ignored and reported as warnings,
//! since a misspelt key (`namespace:` for `namespaces:`) silently widens a rule.

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::LoadError;
use crate::model::{API_VERSION_V1, API_VERSION_V1BETA1, KIND_POLICY, Policy};

/// The syntax of the input text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Yaml,
    Json,
}

const POLICY_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "rules",
    "omitStages",
    "omitManagedFields",
];
const RULE_FIELDS: &[&str] = &[
    "level",
    "users",
    "userGroups",
    "verbs",
    "resources",
    "namespaces",
    "nonResourceURLs",
    "omitStages",
    "omitManagedFields",
];
const GROUP_RESOURCES_FIELDS: &[&str] = &["group", "resources", "resourceNames"];

/// The largest policy accepted, in bytes. Real audit policies are a few
/// kilobytes; the product's own sample is about ten.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// The deepest nesting of flow collections (`{`, `[`) accepted. A policy
/// needs four or five levels.
pub const MAX_POLICY_DEPTH: usize = 64;

/// The most values (keys, scalars, sequences and mappings, counted as YAML
/// aliases expand them) a policy may hold. Every value takes more than a
/// byte, so a policy of [`MAX_POLICY_BYTES`] without aliases stays below it
/// and only alias expansion reaches it: a few kilobytes of nested aliases
/// (`&a [x, x, …]`, `&b [*a, *a, …]`, …) would otherwise expand to billions
/// of values, taking minutes and gigabytes.
pub const MAX_POLICY_VALUES: usize = MAX_POLICY_BYTES;

/// Refuses text that is too large or nests flow collections too deeply,
/// before any parser sees it: parsing deeply nested YAML costs time that
/// grows faster than the text, so a small hostile document could keep a
/// core busy for a minute. Quoted strings and comments are skipped; block
/// nesting is bounded by the size and by the parser's own recursion limit.
fn check_shape(src: &str) -> Result<(), LoadError> {
    if src.len() > MAX_POLICY_BYTES {
        return Err(LoadError::TooLarge {
            bytes: src.len(),
            max: MAX_POLICY_BYTES,
        });
    }
    let (mut depth, mut line) = (0usize, 1usize);
    let (mut single, mut double, mut comment, mut escaped) = (false, false, false, false);
    let mut previous = '\n';
    for c in src.chars() {
        match c {
            '\n' => {
                line += 1;
                comment = false;
            }
            _ if comment => {}
            _ if double => match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => double = false,
                _ => {}
            },
            '\'' if single => single = false,
            _ if single => {}
            '#' if previous.is_whitespace() => comment = true,
            '"' => double = true,
            '\'' => single = true,
            '{' | '[' => {
                depth += 1;
                if depth > MAX_POLICY_DEPTH {
                    return Err(LoadError::TooDeep {
                        line,
                        max: MAX_POLICY_DEPTH,
                    });
                }
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        previous = c;
    }
    Ok(())
}

/// Decodes and checks a policy document; returns it with unknown-field warnings.
pub(crate) fn load(src: &str, format: Format) -> Result<(Policy, Vec<String>), LoadError> {
    check_shape(src)?;
    let tree = parse_tree(src, format)?;
    let Value::Object(top) = &tree else {
        return Err(LoadError::NotAMapping);
    };
    let api_version = check_api_version(top)?;
    check_kind(top, api_version)?;
    let policy = decode(src, format)?;
    let warnings = unknown_fields(top);
    if policy.rules.is_empty() {
        return Err(LoadError::NoRules);
    }
    Ok((policy, warnings))
}

fn parse_tree(src: &str, format: Format) -> Result<Value, LoadError> {
    match format {
        Format::Yaml => {
            let budget = Cell::new(MAX_POLICY_VALUES);
            let de = serde_norway::Deserializer::from_str(src);
            Counted(&budget).deserialize(de).map_err(|e| {
                if budget.get() == 0 {
                    return LoadError::TooManyValues {
                        max: MAX_POLICY_VALUES,
                    };
                }
                let loc = e.location();
                LoadError::Parse {
                    message: e.to_string(),
                    line: loc.as_ref().map(serde_norway::Location::line),
                    column: loc.as_ref().map(serde_norway::Location::column),
                }
            })
        }
        Format::Json => serde_json::from_str::<Value>(src).map_err(|e| LoadError::Parse {
            message: e.to_string(),
            line: Some(e.line()),
            column: Some(e.column()),
        }),
    }
}

/// Deserialises a [`Value`] as `serde_json`'s own visitor does, spending one
/// unit of the budget per value and failing when it is spent. Aliases are
/// expanded by the YAML deserializer, which calls this visitor again for
/// every value of every expansion, so the count is the expanded size and
/// the parse stops as soon as it is too large, before the memory is taken.
/// The typed decode that follows sees the same expansion, so it is bounded
/// too.
struct Counted<'b>(&'b Cell<usize>);

impl Counted<'_> {
    fn spend<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.0.get().checked_sub(1) {
            Some(left) if left > 0 => {
                self.0.set(left);
                Ok(())
            }
            _ => {
                self.0.set(0);
                Err(E::custom(format_args!(
                    "the policy expands to more than {MAX_POLICY_VALUES} values"
                )))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Counted<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counted<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.spend()?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        self.deserialize(de)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Counted(self.0))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.spend()?;
            let value = map.next_value_seed(Counted(self.0))?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

fn decode(src: &str, format: Format) -> Result<Policy, LoadError> {
    match format {
        Format::Yaml => serde_norway::from_str::<Policy>(src).map_err(|e| {
            let loc = e.location();
            LoadError::Decode {
                message: e.to_string(),
                line: loc.as_ref().map(serde_norway::Location::line),
                column: loc.as_ref().map(serde_norway::Location::column),
            }
        }),
        Format::Json => serde_json::from_str::<Policy>(src).map_err(|e| LoadError::Decode {
            message: e.to_string(),
            line: Some(e.line()),
            column: Some(e.column()),
        }),
    }
}

fn check_api_version(top: &Map<String, Value>) -> Result<&'static str, LoadError> {
    match top.get("apiVersion") {
        None | Some(Value::Null) => Err(LoadError::MissingApiVersion),
        Some(Value::String(s)) if s == API_VERSION_V1 => Ok(API_VERSION_V1),
        Some(Value::String(s)) if s == API_VERSION_V1BETA1 => Ok(API_VERSION_V1BETA1),
        Some(other) => Err(LoadError::UnsupportedApiVersion {
            found: scalar_text(other),
        }),
    }
}

fn check_kind(top: &Map<String, Value>, api_version: &str) -> Result<(), LoadError> {
    match top.get("kind") {
        None | Some(Value::Null) => Err(LoadError::MissingKind),
        Some(Value::String(s)) if s == KIND_POLICY => Ok(()),
        Some(other) => Err(LoadError::WrongKind {
            api_version: api_version.to_owned(),
            found: scalar_text(other),
        }),
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Paths of keys the audit Policy schema does not have, in document order,
/// formatted like apimachinery's strict decoding errors. `metadata` is not
/// inspected.
fn unknown_fields(top: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    check_keys(top, POLICY_FIELDS, "", &mut out);
    if let Some(Value::Array(rules)) = top.get("rules") {
        for (i, rule) in rules.iter().enumerate() {
            let Value::Object(rule) = rule else { continue };
            let rule_path = format!("rules[{i}]");
            check_keys(rule, RULE_FIELDS, &rule_path, &mut out);
            if let Some(Value::Array(groups)) = rule.get("resources") {
                for (j, gr) in groups.iter().enumerate() {
                    if let Value::Object(gr) = gr {
                        let gr_path = format!("{rule_path}.resources[{j}]");
                        check_keys(gr, GROUP_RESOURCES_FIELDS, &gr_path, &mut out);
                    }
                }
            }
        }
    }
    out
}

fn check_keys(map: &Map<String, Value>, known: &[&str], prefix: &str, out: &mut Vec<String>) {
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            out.push(format!("unknown field {path:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";

    #[test]
    fn unknown_fields_are_warned_with_paths_and_ignored() {
        let src = format!(
            "{HEADER}extra: 1\nrules:\n- level: None\n  namespace: [kube-system]\n  resources:\n  - group: \"\"\n    resource: [pods]\n"
        );
        let (p, warnings) = load(&src, Format::Yaml).unwrap();
        assert_eq!(
            warnings,
            vec![
                r#"unknown field "extra""#,
                r#"unknown field "rules[0].namespace""#,
                r#"unknown field "rules[0].resources[0].resource""#,
            ]
        );
        assert!(p.rules[0].namespaces.is_empty());
        assert!(p.rules[0].resources[0].resources.is_empty());
    }

    #[test]
    fn metadata_contents_are_not_inspected() {
        let src = format!("{HEADER}metadata:\n  name: x\n  whatever: y\nrules:\n- level: None\n");
        let (p, warnings) = load(&src, Format::Yaml).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(
            p.metadata,
            Some(serde_json::json!({"name": "x", "whatever": "y"}))
        );
    }

    #[test]
    fn field_names_are_case_sensitive() {
        let src = format!("{HEADER}rules:\n- Level: Metadata\n");
        let (p, warnings) = load(&src, Format::Yaml).unwrap();
        assert_eq!(p.rules[0].level, "");
        assert_eq!(warnings, vec![r#"unknown field "rules[0].Level""#]);
    }

    #[test]
    fn non_string_api_version_is_unsupported() {
        let err = load("apiVersion: 1\nkind: Policy\n", Format::Yaml).unwrap_err();
        assert_eq!(
            err,
            LoadError::UnsupportedApiVersion {
                found: "1".to_owned()
            }
        );
    }

    #[test]
    fn empty_and_scalar_documents_are_not_mappings() {
        assert_eq!(load("", Format::Yaml).unwrap_err(), LoadError::NotAMapping);
        assert_eq!(
            load("just text", Format::Yaml).unwrap_err(),
            LoadError::NotAMapping
        );
        assert_eq!(
            load("[1, 2]", Format::Json).unwrap_err(),
            LoadError::NotAMapping
        );
    }

    #[test]
    fn wrong_type_is_a_decode_error_with_position() {
        let src = format!("{HEADER}rules:\n- level: None\n  users: {{a: b}}\n");
        let err = load(&src, Format::Yaml).unwrap_err();
        assert!(matches!(err, LoadError::Decode { .. }), "{err:?}");
        assert_eq!(err.line(), Some(5));
    }

    #[test]
    fn multiple_documents_are_rejected() {
        let src = format!("{HEADER}rules:\n- level: None\n---\n{HEADER}rules:\n- level: None\n");
        let err = load(&src, Format::Yaml).unwrap_err();
        assert!(matches!(err, LoadError::Parse { .. }), "{err:?}");
    }
}

//! Errors for loading, encoding and validating an audit policy.
//!
//! Two kinds of failure must stay apart: a document that cannot be read as a
//! policy at all ([`LoadError`], with a line and column where the parser has
//! one), and a readable policy that kube-apiserver would refuse
//! ([`ValidationErrors`]). The latter is rendered exactly like apimachinery's
//! `field.ErrorList.ToAggregate()` so operators see the message they would
//! get from the API server.

use std::collections::HashSet;
use std::fmt;

use thiserror::Error;

use crate::quote::{go_json_string, go_json_string_list, go_quote};

/// The document could not be loaded as an audit policy.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The text is not well-formed YAML/JSON (or not a single document).
    #[error("failed parsing policy document: {message}")]
    Parse {
        /// The parser's message (it includes the position when known).
        message: String,
        /// 1-based line of the error, when the parser reports one.
        line: Option<usize>,
        /// 1-based column of the error, when the parser reports one.
        column: Option<usize>,
    },
    /// The text is larger than any audit policy needs to be.
    #[error("the policy is {bytes} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit ([`crate::MAX_POLICY_BYTES`]).
        max: usize,
    },
    /// The text nests flow collections (`{`, `[`) deeper than any audit
    /// policy does; refused before parsing, whose cost grows with depth.
    #[error("the policy nests '{{' and '[' more than {max} levels deep (line {line})")]
    TooDeep {
        /// 1-based line where the limit was crossed.
        line: usize,
        /// The limit ([`crate::MAX_POLICY_DEPTH`]).
        max: usize,
    },
    /// The document expands (through YAML aliases) to more values than any
    /// audit policy holds; refused as soon as the count is crossed.
    #[error("the policy expands to more than {max} values (YAML aliases that repeat aliases?)")]
    TooManyValues {
        /// The limit ([`crate::MAX_POLICY_VALUES`]).
        max: usize,
    },
    /// The document is empty or its top level is not a mapping/object.
    #[error("policy document must be a mapping with apiVersion, kind and rules")]
    NotAMapping,
    /// `apiVersion` is absent.
    #[error(
        "policy document has no apiVersion; supported versions are \"audit.k8s.io/v1\" and \"audit.k8s.io/v1beta1\""
    )]
    MissingApiVersion,
    /// `apiVersion` names a version this crate (and current kube-apiserver) does not load.
    #[error(
        "unsupported audit policy apiVersion {found:?}; supported versions are \"audit.k8s.io/v1\" and \"audit.k8s.io/v1beta1\""
    )]
    UnsupportedApiVersion {
        /// The value found in the document.
        found: String,
    },
    /// `kind` is absent.
    #[error("policy document has no kind; expected \"Policy\"")]
    MissingKind,
    /// `kind` is something other than `Policy`.
    #[error("unsupported kind {found:?} for {api_version}; expected \"Policy\"")]
    WrongKind {
        /// The (supported) apiVersion of the document.
        api_version: String,
        /// The kind found in the document.
        found: String,
    },
    /// The document is well-formed but a field has the wrong shape or type.
    #[error("failed decoding: {message}")]
    Decode {
        /// The decoder's message (it includes the position when known).
        message: String,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// 1-based column of the error, when known.
        column: Option<usize>,
    },
    /// The policy has no rules; kube-apiserver refuses to start with it.
    #[error("loaded illegal policy with 0 rules")]
    NoRules,
}

impl LoadError {
    /// 1-based line of the error, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Parse { line, .. } | Self::Decode { line, .. } => *line,
            _ => None,
        }
    }

    /// 1-based column of the error, when known.
    pub fn column(&self) -> Option<usize> {
        match self {
            Self::Parse { column, .. } | Self::Decode { column, .. } => *column,
            _ => None,
        }
    }
}

/// The policy could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("failed encoding policy: {0}")]
pub struct EncodeError(pub(crate) String);

/// An audit level string that is not one of the four levels.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown audit level {0:?}")]
pub struct UnknownLevel(pub String);

/// An audit stage string that is not one of the four stages.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown audit stage {0:?}")]
pub struct UnknownStage(pub String);

/// The kind of a [`FieldError`], mirroring apimachinery's `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FieldErrorType {
    /// `FieldValueRequired`: rendered as "Required value".
    Required,
    /// `FieldValueInvalid`: rendered as "Invalid value".
    Invalid,
    /// `FieldValueNotSupported`: rendered as "Unsupported value".
    NotSupported,
}

impl FieldErrorType {
    /// The text apimachinery prints for this type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "Required value",
            Self::Invalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
        }
    }
}

impl fmt::Display for FieldErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The offending value of a [`FieldError`], with the Go type it had upstream
/// (which decides how it is printed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BadValue {
    /// No value is printed (used by `Required`).
    Omitted,
    /// A Go `string`: printed with `%q`.
    String(String),
    /// A named Go string type such as `audit.Level`: printed as JSON.
    Named(String),
    /// A Go `[]string`: printed as JSON.
    List(Vec<String>),
}

impl BadValue {
    fn render(&self) -> Option<String> {
        match self {
            Self::Omitted => None,
            Self::String(s) => Some(go_quote(s)),
            Self::Named(s) => Some(go_json_string(s)),
            Self::List(items) => Some(go_json_string_list(items)),
        }
    }
}

/// One validation failure, formatted like apimachinery's `field.Error`
/// (`<path>: <type>[: <value>][: <detail>]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldError {
    error_type: FieldErrorType,
    field: String,
    bad_value: BadValue,
    detail: String,
}

impl FieldError {
    pub(crate) fn required(field: String) -> Self {
        Self {
            error_type: FieldErrorType::Required,
            field,
            bad_value: BadValue::Omitted,
            detail: String::new(),
        }
    }

    pub(crate) fn invalid(field: String, bad_value: BadValue, detail: impl Into<String>) -> Self {
        Self {
            error_type: FieldErrorType::Invalid,
            field,
            bad_value,
            detail: detail.into(),
        }
    }

    pub(crate) fn not_supported(field: String, bad_value: BadValue, supported: &[&str]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self {
            error_type: FieldErrorType::NotSupported,
            field,
            bad_value,
            detail,
        }
    }

    /// The kind of failure.
    pub fn error_type(&self) -> FieldErrorType {
        self.error_type
    }

    /// The field path, e.g. `rules[2].resources.group`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The offending value.
    pub fn bad_value(&self) -> &BadValue {
        &self.bad_value
    }

    /// The explanation (may be empty).
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The message without the field path, like apimachinery's `ErrorBody()`.
    pub fn body(&self) -> String {
        let mut s = self.error_type.as_str().to_owned();
        if self.error_type != FieldErrorType::Required
            && let Some(value) = self.bad_value.render()
        {
            s.push_str(": ");
            s.push_str(&value);
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// All validation failures of a policy, in the order upstream reports them.
///
/// `Display` joins them like `field.ErrorList.ToAggregate().Error()`: a single
/// message on its own, several as `[a, b, ...]`, identical messages once.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}", aggregate_message(&self.errors))]
pub struct ValidationErrors {
    errors: Vec<FieldError>,
}

impl ValidationErrors {
    pub(crate) fn new(errors: Vec<FieldError>) -> Self {
        Self { errors }
    }

    /// Every error, including repeated messages.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// How many errors were found.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether the list is empty (never true for a returned error).
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The distinct rendered messages, in order (what the aggregate prints).
    pub fn messages(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.errors
            .iter()
            .map(ToString::to_string)
            .filter(|m| seen.insert(m.clone()))
            .collect()
    }
}

fn aggregate_message(errors: &[FieldError]) -> String {
    let mut seen = HashSet::new();
    let unique: Vec<String> = errors
        .iter()
        .map(ToString::to_string)
        .filter(|m| seen.insert(m.clone()))
        .collect();
    match unique.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_prints_no_value() {
        let e = FieldError::required("rules[0].level".to_owned());
        assert_eq!(e.to_string(), "rules[0].level: Required value");
    }

    #[test]
    fn not_supported_lists_values_in_given_order() {
        let e = FieldError::not_supported(
            "rules[1].level".to_owned(),
            BadValue::Named("Foo".to_owned()),
            &["None", "Metadata"],
        );
        assert_eq!(
            e.to_string(),
            r#"rules[1].level: Unsupported value: "Foo": supported values: "None", "Metadata""#
        );
    }

    #[test]
    fn invalid_list_value_is_json() {
        let e = FieldError::invalid(
            "rules[0].nonResourceURLs".to_owned(),
            BadValue::List(vec!["/a".to_owned(), "/b".to_owned()]),
            "nope",
        );
        assert_eq!(
            e.to_string(),
            r#"rules[0].nonResourceURLs: Invalid value: ["/a","/b"]: nope"#
        );
    }

    #[test]
    fn aggregate_single_plain_many_bracketed_and_deduplicated() {
        let a = FieldError::required("a".to_owned());
        let b = FieldError::required("b".to_owned());
        assert_eq!(
            ValidationErrors::new(vec![a.clone()]).to_string(),
            "a: Required value"
        );
        assert_eq!(
            ValidationErrors::new(vec![a.clone(), a.clone()]).to_string(),
            "a: Required value"
        );
        let errs = ValidationErrors::new(vec![a.clone(), b, a]);
        assert_eq!(errs.to_string(), "[a: Required value, b: Required value]");
        assert_eq!(errs.len(), 3);
        assert_eq!(errs.messages().len(), 2);
    }

    #[test]
    fn load_error_positions() {
        let e = LoadError::Parse {
            message: "x".to_owned(),
            line: Some(3),
            column: Some(7),
        };
        assert_eq!((e.line(), e.column()), (Some(3), Some(7)));
        assert_eq!(LoadError::NoRules.line(), None);
        assert_eq!(
            LoadError::NoRules.to_string(),
            "loaded illegal policy with 0 rules"
        );
    }
}

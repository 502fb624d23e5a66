//! Configuration errors as an operator needs to read them: which key, what
//! value, which layer set it (the file, the exact environment variable, the
//! flags or the defaults), and for a misspelt key the closest known one.
//!
//! figment's own messages say `invalid type: found string "ninety",
//! expected u32 for key "default.retention_days"` and name serialized
//! layers after a line of our source; these are rewritten here.

use figment::error::Kind;

use crate::ENV_PREFIX;

/// Every error of `err`, one clause each, joined with `; `; the values
/// are looked up in `figment`, the layers that were extracted.
pub(crate) fn describe(err: &figment::Error, figment: &figment::Figment) -> String {
    err.clone()
        .into_iter()
        .map(|e| one(&e, figment))
        .collect::<Vec<_>>()
        .join("; ")
}

fn one(e: &figment::Error, figment: &figment::Figment) -> String {
    let mut path = e.path.clone();
    // An unknown key is reported at its table, or (in a nested table) at
    // the key itself: name the key once.
    if let Kind::UnknownField(field, _) = &e.kind
        && path.last() != Some(field)
    {
        path.push(field.clone());
    }
    let key = path.join(".");
    let from = origin(e, &path);
    let what = match &e.kind {
        Kind::UnknownField(field, expected) => {
            let hint = closest(field, expected)
                .map(|k| format!("; did you mean {k}?"))
                .unwrap_or_default();
            let known = if expected.is_empty() {
                "this table takes no keys".to_owned()
            } else {
                format!("known keys here: {}", expected.join(", "))
            };
            return format!("unknown key {key}{from}{hint} ({known})");
        }
        Kind::UnknownVariant(value, expected) => {
            format!(
                "unknown value {value:?}, expected one of {}",
                expected.join(", ")
            )
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("{actual} is not {}", article(expected))
        }
        Kind::MissingField(field) => {
            let missing = if key.is_empty() {
                field.to_string()
            } else {
                format!("{key}.{field}")
            };
            return format!("missing key {missing}{from}");
        }
        // The kinds above say the value; the others (a bad address, a
        // number out of range) do not.
        other => match figment.find_value(&key) {
            Ok(value) => format!("{} is not valid: {other}", shown(&value)),
            Err(_) => other.to_string(),
        },
    };
    if key.is_empty() {
        format!("{what}{from}")
    } else {
        format!("{key}{from}: {what}")
    }
}

/// A configuration value as an operator wrote it, with its kind
/// (`string "x"`, `unsigned int 7`); long ones cut.
fn shown(value: &figment::value::Value) -> String {
    const MAX: usize = 80;
    let text = value.to_actual().to_string();
    match text.char_indices().nth(MAX) {
        None => text,
        Some((cut, _)) => format!("{}… ({} characters)", &text[..cut], text.chars().count()),
    }
}

/// ` (in file F)`, ` (from environment variable V)`, ` (from the
/// command-line flags)`, or nothing when figment does not know.
fn origin(e: &figment::Error, path: &[String]) -> String {
    let Some(metadata) = &e.metadata else {
        return String::new();
    };
    if metadata.name.contains("environment") && !path.is_empty() {
        let variable = format!("{ENV_PREFIX}{}", path.join("__")).to_uppercase();
        return format!(" (from environment variable {variable})");
    }
    match &metadata.source {
        Some(figment::Source::File(file)) => format!(" (in file {})", file.display()),
        Some(figment::Source::Custom(custom)) => format!(" (from {custom})"),
        _ => format!(" (from the {})", metadata.name),
    }
}

/// "a u32" for "u32"; serde's `expected` texts that already read as a
/// phrase ("a string", "socket address") are kept.
fn article(expected: &str) -> String {
    if expected.starts_with("a ") || expected.starts_with("an ") {
        return expected.to_owned();
    }
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number ≥ 0".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "bool" | "a boolean" => "true or false".to_owned(),
        other => format!("a valid {other}"),
    }
}

/// The known key most like `typed`, when one is close enough to be what
/// was meant.
fn closest(typed: &str, known: &[&str]) -> Option<String> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(typed, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_keys_are_suggested_and_far_ones_are_not() {
        let known = ["retention_days", "max_event_bytes", "min_retention_days"];
        assert_eq!(
            closest("retention_dayz", &known).as_deref(),
            Some("retention_days")
        );
        assert_eq!(closest("colour", &known), None);
    }

    #[test]
    fn expected_types_read_as_phrases() {
        assert_eq!(article("u32"), "a whole number ≥ 0");
        assert_eq!(article("a string"), "a string");
        assert_eq!(article("socket address"), "a valid socket address");
    }
}

//! The `-o text|json|yaml` flag shared by the commands that print one
//! answer (`health`, `stats`, `ingest-status`, `services`, `policy`,
//! `setup`, `report`, `snapshot`), and how a document is printed. JSON and YAML documents have
//! stable camelCase field names.

use serde::Serialize;

/// How to print an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// For people (`table` is the same).
    #[value(alias = "table")]
    Text,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

/// `-o`/`--output`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct OutputArg {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    pub(crate) output: Format,
}

/// Prints `value` as one JSON (pretty) or YAML document; text is the
/// caller's, so it is printed as JSON here.
pub(crate) fn print_document<T: Serialize>(format: Format, value: &T) -> anyhow::Result<()> {
    print!("{}", document(format, value)?);
    Ok(())
}

/// `value` as one JSON (pretty, with a final newline) or YAML document.
pub(crate) fn document<T: Serialize>(format: Format, value: &T) -> anyhow::Result<String> {
    Ok(match format {
        Format::Yaml => serde_norway::to_string(value)?,
        Format::Json | Format::Text => {
            let mut text = serde_json::to_string_pretty(value)?;
            text.push('\n');
            text
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Sample {
        size_bytes: u64,
        oldest: Option<String>,
    }

    #[test]
    fn documents_are_json_or_yaml_with_camel_case_fields() {
        let sample = Sample {
            size_bytes: 2048,
            oldest: None,
        };
        assert_eq!(
            document(Format::Json, &sample).expect("json"),
            "{\n  \"sizeBytes\": 2048,\n  \"oldest\": null\n}\n"
        );
        assert_eq!(
            document(Format::Yaml, &sample).expect("yaml"),
            "sizeBytes: 2048\noldest: null\n"
        );
    }
}

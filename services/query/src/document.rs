//! The export document formats: how a sequence of original events becomes
//! one JSON array, NDJSON, or multi-document YAML.
//!
//! Shared by the `Export` RPC and the command line (`auditrail search -o`),
//! so a document reads the same wherever it was written. JSON and NDJSON
//! reproduce each event's original bytes; YAML is converted from the JSON
//! with its key order kept.

/// A document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON array of the original events, separated by `",\n"`.
    Json,
    /// The original events, one per line.
    Ndjson,
    /// One YAML document per event, each after a `---` line.
    Yaml,
}

/// An event that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The event's bytes are not JSON (YAML needs to parse them).
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    /// Rendering the YAML failed.
    #[error("cannot render YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
}

/// Writes events into a document, one after the other.
#[derive(Debug)]
pub struct DocumentWriter {
    format: Format,
    events: u64,
}

impl DocumentWriter {
    /// A writer of an empty document.
    pub fn new(format: Format) -> Self {
        Self { format, events: 0 }
    }

    /// Appends the event `raw` (its original JSON) to `out`.
    pub fn event(&mut self, raw: &[u8], out: &mut Vec<u8>) -> Result<(), DocumentError> {
        match self.format {
            Format::Json => {
                out.extend_from_slice(if self.events == 0 { b"[\n" } else { b",\n" });
                out.extend_from_slice(raw);
            }
            Format::Ndjson => {
                out.extend_from_slice(raw);
                out.push(b'\n');
            }
            Format::Yaml => {
                // serde_norway's mapping keeps insertion order, so the YAML
                // has the original key order.
                let value: serde_norway::Value = serde_json::from_slice(raw)?;
                let yaml = serde_norway::to_string(&value)?;
                out.extend_from_slice(b"---\n");
                out.extend_from_slice(yaml.as_bytes());
            }
        }
        self.events += 1;
        Ok(())
    }

    /// Appends the end of the document to `out`.
    pub fn finish(&self, out: &mut Vec<u8>) {
        if self.format == Format::Json {
            out.extend_from_slice(if self.events == 0 { b"[]\n" } else { b"\n]\n" });
        }
    }

    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(format: Format, events: &[&str]) -> String {
        let mut writer = DocumentWriter::new(format);
        let mut out = Vec::new();
        for e in events {
            writer.event(e.as_bytes(), &mut out).expect("event");
        }
        writer.finish(&mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn json_is_an_array_of_the_original_bytes() {
        assert_eq!(document(Format::Json, &[]), "[]\n");
        let doc = document(Format::Json, &[r#"{"b":1, "a":2}"#, r#"{"c":3}"#]);
        assert_eq!(doc, "[\n{\"b\":1, \"a\":2},\n{\"c\":3}\n]\n");
        let parsed: serde_json::Value = serde_json::from_str(&doc).expect("json");
        assert_eq!(parsed.as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn ndjson_is_the_log_lines() {
        assert_eq!(document(Format::Ndjson, &[]), "");
        assert_eq!(
            document(Format::Ndjson, &[r#"{"b":1}"#, r#"{"c":3}"#]),
            "{\"b\":1}\n{\"c\":3}\n"
        );
    }

    #[test]
    fn yaml_keeps_key_order_in_separate_documents() {
        let doc = document(
            Format::Yaml,
            &[r#"{"b":1,"a":{"y":2,"x":3}}"#, r#"{"c":"d"}"#],
        );
        assert_eq!(doc, "---\nb: 1\na:\n  y: 2\n  x: 3\n---\nc: d\n");
    }
}

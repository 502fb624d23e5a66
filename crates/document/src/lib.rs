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

/// What an enveloped event carries beside its original bytes.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The stored event's id.
    pub id: &'a str,
    /// Its cluster.
    pub cluster: &'a str,
    /// Its type (`kube`, `ee`).
    pub event_type: &'a str,
    /// Its provenance as JSON (`auditrail.v1.Provenance`'s JSON form);
    /// `None` for an event stored without one (written as `null`).
    pub provenance: Option<&'a str>,
}

impl Envelope<'_> {
    /// `{"id":…,"cluster":…,"type":…,"provenance":…,"event":RAW}`: the
    /// event's original bytes are the value of `event`, unchanged, so
    /// `jq -c .event` gives back the log line byte for byte (JSON and
    /// NDJSON documents; YAML converts it like any event).
    pub fn wrap(&self, raw: &[u8]) -> Vec<u8> {
        let quoted = |s: &str| serde_json::Value::from(s).to_string();
        let mut out = Vec::with_capacity(raw.len() + 256);
        out.extend_from_slice(b"{\"id\":");
        out.extend_from_slice(quoted(self.id).as_bytes());
        out.extend_from_slice(b",\"cluster\":");
        out.extend_from_slice(quoted(self.cluster).as_bytes());
        out.extend_from_slice(b",\"type\":");
        out.extend_from_slice(quoted(self.event_type).as_bytes());
        out.extend_from_slice(b",\"provenance\":");
        out.extend_from_slice(self.provenance.unwrap_or("null").as_bytes());
        out.extend_from_slice(b",\"event\":");
        out.extend_from_slice(raw);
        out.push(b'}');
        out
    }
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

/// The YAML of one event's JSON, in its key order (serde_norway's mapping
/// keeps insertion order).
fn yaml(raw: &[u8]) -> Result<String, DocumentError> {
    let value: serde_norway::Value = serde_json::from_slice(raw)?;
    Ok(serde_norway::to_string(&value)?)
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

    /// Appends the event `raw` (its original JSON) to `out`. Never fails
    /// for one event's content: YAML that cannot be rendered degrades to the
    /// event's JSON with a comment.
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
                out.extend_from_slice(b"---\n");
                match yaml(raw) {
                    Ok(yaml) => out.extend_from_slice(yaml.as_bytes()),
                    // One event that cannot be rendered (it nests deeper
                    // than the JSON parser's limit of 128 levels) must not
                    // fail a whole export: it is written as its original
                    // JSON, which is YAML too, after a comment saying so.
                    Err(err) => {
                        out.extend_from_slice(
                            format!(
                                "# auditrail: this event is shown as its original JSON (also \
                                 valid YAML): {err}\n"
                            )
                            .as_bytes(),
                        );
                        out.extend_from_slice(raw);
                        out.push(b'\n');
                    }
                }
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
    fn an_envelope_holds_the_original_bytes_unchanged() {
        let raw = r#"{"b":1,  "a":"x\u00e9"}"#;
        let envelope = Envelope {
            id: "ab12",
            cluster: "prod \"eu\"",
            event_type: "kube",
            provenance: Some(r#"{"ingestedBy":"ingestor"}"#),
        };
        let wrapped = String::from_utf8(envelope.wrap(raw.as_bytes())).expect("utf-8");
        assert_eq!(
            wrapped,
            r#"{"id":"ab12","cluster":"prod \"eu\"","type":"kube","provenance":{"ingestedBy":"ingestor"},"event":{"b":1,  "a":"x\u00e9"}}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&wrapped).expect("json");
        assert_eq!(parsed["provenance"]["ingestedBy"], "ingestor");
        assert!(wrapped.ends_with(&format!("\"event\":{raw}}}")));
        let none = Envelope {
            provenance: None,
            ..envelope
        };
        let parsed: serde_json::Value =
            serde_json::from_slice(&none.wrap(raw.as_bytes())).expect("json");
        assert!(parsed["provenance"].is_null());
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

    #[test]
    fn yaml_of_a_too_deep_event_is_its_json_and_the_rest_renders() {
        let deep = format!(
            "{{\"kind\":\"Event\",\"x\":{}1{}}}",
            "[".repeat(5000),
            "]".repeat(5000)
        );
        let doc = document(Format::Yaml, &[r#"{"a":1}"#, &deep, r#"{"b":2}"#]);
        let parts: Vec<&str> = doc.split("---\n").collect();
        assert_eq!(parts.len(), 4, "three documents");
        assert_eq!(parts[1], "a: 1\n");
        assert!(
            parts[2].starts_with("# auditrail: this event is shown as its original JSON"),
            "{}",
            &parts[2][..200]
        );
        assert!(parts[2].contains("recursion limit exceeded"));
        assert!(parts[2].ends_with(&format!("{deep}\n")));
        assert_eq!(parts[3], "b: 2\n");
    }
}

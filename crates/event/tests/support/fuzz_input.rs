//! Inputs for the property-based fuzzing of everything that reads audit
//! events: the real events in `shared/data/real`, and mutations of them
//! (byte flips, truncations, duplications, nesting wraps, random JSON
//! values in the fields the model reads). Shared by path by the fuzz tests
//! of `auditrail-event`, `auditrail-store`, `auditrail-versions`,
//! `auditrail-policy` and `auditrail-query`, so they all attack the same
//! inputs.

#![allow(dead_code, unreachable_pub)] // each includer uses a part

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

#[path = "real_data.rs"]
mod real_data;
use real_data::real_data_dir;

/// The number of cases of a property: `PROPTEST_CASES` when set, else
/// `default`, so the normal test run stays short and a long run is one
/// variable away.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A proptest configuration running [`cases`]`(default)` cases.
pub fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        ..ProptestConfig::default()
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{} must exist beside the checkout: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every non-blank line of every real sample, without its terminator, in
/// a stable order.
pub fn real_lines() -> &'static [Vec<u8>] {
    static LINES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let mut files = Vec::new();
        collect_files(&real_data_dir(), &mut files);
        files.sort();
        let mut lines = Vec::new();
        for file in files {
            let bytes = std::fs::read(&file).expect("read sample");
            for line in bytes.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.iter().all(u8::is_ascii_whitespace) {
                    lines.push(line.to_vec());
                }
            }
        }
        assert!(
            lines.len() > 100,
            "expected the real samples, found {} lines",
            lines.len()
        );
        lines
    })
}

/// Strings that mean something to the parsers, and some that break naive
/// string handling.
const INTERESTING: &[&str] = &[
    "",
    " ",
    "Event",
    "EventList",
    "audit.k8s.io/v1",
    "audit.k8s.io/v1beta1",
    "audit.k8s.io/v2",
    "None",
    "Metadata",
    "Request",
    "RequestResponse",
    "RequestReceived",
    "ResponseStarted",
    "ResponseComplete",
    "Panic",
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "exec",
    "attach",
    "portforward",
    "proxy",
    "scale",
    "status",
    "eviction",
    "log",
    "pods",
    "namespaces",
    "networkpolicies",
    "globalnetworkpolicies",
    "Status",
    "DeleteOptions",
    "PodList",
    "projectcalico.org",
    "networking.k8s.io",
    "/api/v1/namespaces/default/pods?dryRun=All",
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00.123456789+02:00",
    "9999-12-31T23:59:59.999999999Z",
    "-009999-01-01T00:00:00Z",
    "0000-00-00T00:00:00Z",
    "1970-01-01T00:00:00+25:00",
    "2026-13-45T99:99:99Z",
    "\u{0}",
    "\u{7f}",
    "\u{2028}",
    "\u{feff}",
    "é",
    "🦀",
    "a\u{301}",
    "\\",
    "\"",
    "..",
    "*",
    "/",
    "kube-system/",
    "system:serviceaccount:kube-system:default",
];

fn interesting() -> impl Strategy<Value = String> {
    prop::sample::select(INTERESTING).prop_map(str::to_owned)
}

/// A key of a JSON object: the model's own field names or anything.
fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "kind",
                "apiVersion",
                "metadata",
                "name",
                "details",
                "namespace",
                "resourceVersion",
                "managedFields",
                "uid",
                "spec",
                "status",
                "conditions",
                "lastTransitionTime",
                "items",
            ][..]
        )
        .prop_map(str::to_owned),
        ".{0,6}",
    ]
}

/// A JSON value of bounded size, made of what people and attackers put in
/// fields: every type, huge and odd numbers, odd strings, small trees.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(&[0i64, 1, -1, 99, 100, 199, 200, 299, 300, 403, 599, 600][..])
            .prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        interesting().prop_map(Value::String),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// The fields the event model and its readers look at.
const FIELDS: &[&[&str]] = &[
    &["kind"],
    &["apiVersion"],
    &["level"],
    &["auditID"],
    &["stage"],
    &["requestURI"],
    &["verb"],
    &["user"],
    &["user", "username"],
    &["user", "groups"],
    &["user", "extra"],
    &["impersonatedUser"],
    &["impersonatedUser", "username"],
    &["sourceIPs"],
    &["userAgent"],
    &["objectRef"],
    &["objectRef", "resource"],
    &["objectRef", "namespace"],
    &["objectRef", "name"],
    &["objectRef", "apiGroup"],
    &["objectRef", "apiVersion"],
    &["objectRef", "subresource"],
    &["responseStatus"],
    &["responseStatus", "code"],
    &["requestObject"],
    &["responseObject"],
    &["responseObject", "kind"],
    &["responseObject", "metadata"],
    &["responseObject", "metadata", "name"],
    &["responseObject", "metadata", "managedFields"],
    &["responseObject", "details", "name"],
    &["requestReceivedTimestamp"],
    &["stageTimestamp"],
    &["timestamp"],
    &["annotations"],
    &["metadata"],
];

/// How a value is wrapped by a nesting mutation.
#[derive(Debug, Clone, Copy)]
pub enum Wrap {
    /// `[[[ … ]]]`
    Array,
    /// `{"a":{"a": … }}`
    Object,
}

/// One change to an input.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// XOR one byte with a non-zero mask.
    FlipByte(Index, u8),
    /// Cut the input at a position.
    Truncate(Index),
    /// Copy a range and insert the copy at a position.
    Duplicate(Index, Index, Index),
    /// Remove a range.
    Delete(Index, Index),
    /// Insert bytes that matter to JSON, UTF-8 or line splitting.
    Insert(Index, &'static [u8]),
    /// Set a field (creating its parents) to a value.
    SetField(&'static [&'static str], Value),
    /// Remove a field.
    RemoveField(&'static [&'static str]),
    /// Wrap a field's value (or `null`) in `depth` arrays or objects.
    Nest(&'static [&'static str], Wrap, usize),
    /// Replace a field by the same field of another real event.
    Splice(Index, &'static [&'static str]),
}

const INSERTS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"\\",
    b"\\u",
    b"\\ud800",
    b"\\u0000",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xf0\x9f\xa6",
    b"\n",
    b"\r\n",
    b"\r",
    b" ",
    b"\t",
    b"\0",
    b"null",
    b"1e999",
    b"-0",
    b"18446744073709551616",
    b"\"kind\":\"Event\",",
    b"\"kind\":\"EventList\",",
    b"\"items\":[",
];

fn field() -> impl Strategy<Value = &'static [&'static str]> {
    prop::sample::select(FIELDS)
}

/// One mutation; byte-level ones are the most frequent.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    let wrap = prop_oneof![Just(Wrap::Array), Just(Wrap::Object)];
    prop_oneof![
        3 => (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::FlipByte(i, m)),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(a, b, c)| Mutation::Duplicate(a, b, c)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Delete(a, b)),
        2 => (any::<Index>(), prop::sample::select(INSERTS))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        4 => (field(), json_value()).prop_map(|(f, v)| Mutation::SetField(f, v)),
        1 => field().prop_map(Mutation::RemoveField),
        2 => (field(), wrap, prop_oneof![1..8usize, 120..140usize, 500..3000usize])
            .prop_map(|(f, w, d)| Mutation::Nest(f, w, d)),
        1 => (any::<Index>(), field()).prop_map(|(i, f)| Mutation::Splice(i, f)),
    ]
}

fn range(a: Index, b: Index, len: usize) -> (usize, usize) {
    let (a, b) = (a.index(len + 1), b.index(len + 1));
    (a.min(b), a.max(b))
}

fn get_path<'v>(doc: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(doc, |v, k| v.get(k))
}

/// The value at `path`, creating objects on the way (replacing what is not
/// an object); `None` when `doc` is not an object.
fn entry<'v>(doc: &'v mut Value, path: &[&str]) -> Option<&'v mut Value> {
    let mut v = doc;
    for key in path {
        if !v.is_object() {
            *v = Value::Object(serde_json::Map::new());
        }
        v = v.as_object_mut()?.entry(*key).or_insert(Value::Null);
    }
    Some(v)
}

/// Edits the JSON of `input` (no-op when it is not a JSON object); `edit`
/// returns the text to splice in place of the marker it may leave.
fn edit_json(input: &mut Vec<u8>, edit: impl FnOnce(&mut Value) -> Option<String>) {
    const MARKER: &str = "\u{1}auditrail-fuzz-marker\u{1}";
    let Ok(mut doc) = serde_json::from_slice::<Value>(input) else {
        return;
    };
    if !doc.is_object() {
        return;
    }
    let splice = edit(&mut doc);
    let Ok(mut text) = serde_json::to_string(&doc) else {
        return;
    };
    if let Some(splice) = splice {
        let quoted = serde_json::to_string(MARKER).expect("a string serialises");
        text = text.replacen(&quoted, &splice, 1);
    }
    *input = text.into_bytes();
}

impl Mutation {
    /// Applies the mutation to `input`.
    pub fn apply(&self, input: &mut Vec<u8>) {
        let len = input.len();
        match self {
            Self::FlipByte(i, mask) => {
                if len > 0 {
                    input[i.index(len)] ^= mask;
                }
            }
            Self::Truncate(i) => input.truncate(i.index(len + 1)),
            Self::Duplicate(a, b, at) => {
                let (a, b) = range(*a, *b, len);
                let copy = input[a..b].to_vec();
                let at = at.index(len + 1);
                input.splice(at..at, copy);
            }
            Self::Delete(a, b) => {
                let (a, b) = range(*a, *b, len);
                input.drain(a..b);
            }
            Self::Insert(at, bytes) => {
                let at = at.index(len + 1);
                input.splice(at..at, bytes.iter().copied());
            }
            Self::SetField(path, value) => edit_json(input, |doc| {
                if let Some(slot) = entry(doc, path) {
                    *slot = value.clone();
                }
                None
            }),
            Self::RemoveField(path) => edit_json(input, |doc| {
                let (last, parents) = path.split_last()?;
                get_path_mut(doc, parents)?.as_object_mut()?.remove(*last);
                None
            }),
            Self::Nest(path, wrap, depth) => edit_json(input, |doc| {
                let slot = entry(doc, path)?;
                let inner = serde_json::to_string(slot).ok()?;
                *slot = Value::String("\u{1}auditrail-fuzz-marker\u{1}".to_owned());
                Some(nest(&inner, *wrap, *depth))
            }),
            Self::Splice(other, path) => {
                let lines = real_lines();
                let other = &lines[other.index(lines.len())];
                let Some(value) = serde_json::from_slice::<Value>(other)
                    .ok()
                    .and_then(|v| get_path(&v, path).cloned())
                else {
                    return;
                };
                edit_json(input, |doc| {
                    if let Some(slot) = entry(doc, path) {
                        *slot = value;
                    }
                    None
                });
            }
        }
    }
}

fn get_path_mut<'v>(doc: &'v mut Value, path: &[&str]) -> Option<&'v mut Value> {
    path.iter().try_fold(doc, |v, k| v.get_mut(k))
}

/// `inner` wrapped in `depth` arrays or objects.
pub fn nest(inner: &str, wrap: Wrap, depth: usize) -> String {
    let (open, close) = match wrap {
        Wrap::Array => ("[", "]"),
        Wrap::Object => ("{\"a\":", "}"),
    };
    let mut text = open.repeat(depth);
    text.push_str(inner);
    text.push_str(&close.repeat(depth));
    text
}

/// A real event line after zero to four mutations.
pub fn event_line() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<Index>(),
        prop::collection::vec(mutation(), 0..4),
        prop_oneof![4 => Just(&b""[..]), 1 => Just(&b"\n"[..]), 1 => Just(&b"\r\n"[..])],
    )
        .prop_map(|(line, mutations, terminator)| {
            let lines = real_lines();
            let mut input = lines[line.index(lines.len())].clone();
            for m in &mutations {
                m.apply(&mut input);
            }
            input.extend_from_slice(terminator);
            input
        })
}

/// Any bytes, short.
pub fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..200)
}

/// A real event line, mutated or not, or any bytes.
pub fn event_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![6 => event_line(), 1 => any_bytes()]
}

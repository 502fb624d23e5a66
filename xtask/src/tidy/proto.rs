//! The `auditrail.v1` protobuf contract never breaks: the current `.proto`
//! files, compiled with protox as `proto/build.rs` does, are compared with a
//! committed baseline descriptor, `proto/baseline/auditrail.v1.txtpb`.
//!
//! The baseline is a `FileDescriptorSet` in protobuf text format, with
//! source info (comments, spans) stripped: text so that a change of the
//! contract shows as a readable diff in review (a `.binpb` would be an
//! opaque blob), stripped so that editing a comment does not touch it.
//!
//! Breaking, and refused: a field or enum value removed without reserving
//! its number and name, renumbered, renamed or retyped (type, message type or
//! `repeated`); a message, enum, service or RPC removed; an RPC's request,
//! response or streaming changed. Additions are fine and reported as notes;
//! `cargo xtask tidy --bless-proto` records them (and is the explicit,
//! documented bump for a breaking change, see proto/README.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use prost_reflect::text_format::FormatOptions;
use prost_reflect::{DynamicMessage, ReflectMessage as _};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet,
    ServiceDescriptorProto, field_descriptor_proto::Label,
};

use super::Violation;

/// The package whose contract is kept.
const PACKAGE: &str = "auditrail.v1";
/// The `.proto` files, relative to the workspace root.
const PROTO_DIR: &str = "proto/auditrail/v1";
/// The include root of the `.proto` files.
const PROTO_ROOT: &str = "proto";
/// The committed baseline, relative to the workspace root.
const BASELINE: &str = "proto/baseline/auditrail.v1.txtpb";

const BASELINE_HEADER: &str = "\
# The auditrail.v1 contract as last recorded by `cargo xtask tidy --bless-proto`:
# a google.protobuf.FileDescriptorSet in protobuf text format, source info
# stripped. `cargo xtask tidy` refuses .proto changes that break it; see
# proto/README.md. Generated: do not edit by hand.
";

pub(super) fn check(root: &Path) -> anyhow::Result<Vec<Violation>> {
    let current = compile_current(root)?;
    let baseline_path = root.join(BASELINE);
    if !baseline_path.is_file() {
        return Ok(vec![Violation::new(
            BASELINE,
            "no protobuf baseline: record one with `cargo xtask tidy --bless-proto`",
        )]);
    }
    let baseline = read_baseline(&baseline_path)?;
    let changes = compare(&baseline, &current);
    for addition in &changes.additions {
        eprintln!(
            "tidy note: {addition} is not in {BASELINE} yet: `cargo xtask tidy --bless-proto` \
             records it, so that removing it later is caught"
        );
    }
    Ok(changes
        .breaking
        .into_iter()
        .map(|Breaking { file, change }| {
            Violation::new(
                format!("{PROTO_ROOT}/{file}"),
                format!(
                    "{change}: a breaking change of the {PACKAGE} contract (see proto/README.md; \
                     `cargo xtask tidy --bless-proto` only where it allows)"
                ),
            )
        })
        .collect())
}

/// Rewrites the baseline from the current `.proto` files.
pub(super) fn bless(root: &Path) -> anyhow::Result<()> {
    let current = compile_current(root)?;
    let path = root.join(BASELINE);
    if path.is_file() {
        let changes = compare(&read_baseline(&path)?, &current);
        for Breaking { file, change } in &changes.breaking {
            eprintln!("tidy: blessing a breaking change in {PROTO_ROOT}/{file}: {change}");
        }
        for addition in &changes.additions {
            eprintln!("tidy: recording {addition}");
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&path, to_text(&current))
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("tidy: wrote {BASELINE}");
    Ok(())
}

/// The descriptor of every `.proto` file of [`PROTO_DIR`], normalised.
fn compile_current(root: &Path) -> anyhow::Result<FileDescriptorSet> {
    let dir = root.join(PROTO_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|x| x == "proto"))
        .collect();
    files.sort();
    let set = protox::compile(&files, [root.join(PROTO_ROOT)])
        .with_context(|| format!("cannot compile the .proto files of {PROTO_DIR}"))?;
    Ok(normalise(set))
}

/// Only the files of [`PACKAGE`] (not imports), sorted, without source info.
fn normalise(set: FileDescriptorSet) -> FileDescriptorSet {
    let mut file: Vec<_> = set
        .file
        .into_iter()
        .filter(|f| f.package() == PACKAGE)
        .map(|mut f| {
            f.source_code_info = None;
            f
        })
        .collect();
    file.sort_by(|a, b| a.name().cmp(b.name()));
    FileDescriptorSet { file }
}

fn to_text(set: &FileDescriptorSet) -> String {
    let text = set
        .transcode_to_dynamic()
        .to_text_format_with_options(&FormatOptions::new().pretty(true));
    format!("{BASELINE_HEADER}{text}\n")
}

fn read_baseline(path: &Path) -> anyhow::Result<FileDescriptorSet> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    from_text(&text).with_context(|| format!("{} is not a descriptor set", path.display()))
}

fn from_text(text: &str) -> anyhow::Result<FileDescriptorSet> {
    let message =
        DynamicMessage::parse_text_format(FileDescriptorSet::default().descriptor(), text)?;
    Ok(message.transcode_to()?)
}

/// One breaking change, in the baseline file it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Breaking {
    /// The file, relative to the include root (`auditrail/v1/query.proto`).
    file: String,
    change: String,
}

/// How the current contract differs from the baseline.
#[derive(Debug, Default)]
struct Changes {
    breaking: Vec<Breaking>,
    /// Elements of the current contract the baseline lacks.
    additions: Vec<String>,
}

/// Every message, enum and service of a descriptor set, by full name, with
/// the file it is declared in.
#[derive(Default)]
struct Index<'a> {
    messages: BTreeMap<String, (&'a str, &'a DescriptorProto)>,
    enums: BTreeMap<String, (&'a str, &'a EnumDescriptorProto)>,
    services: BTreeMap<String, (&'a str, &'a ServiceDescriptorProto)>,
}

impl<'a> Index<'a> {
    fn of(set: &'a FileDescriptorSet) -> Self {
        let mut index = Self::default();
        for file in &set.file {
            let prefix = file.package().to_owned();
            for message in &file.message_type {
                index.add_message(file.name(), &prefix, message);
            }
            for e in &file.enum_type {
                index
                    .enums
                    .insert(format!("{prefix}.{}", e.name()), (file.name(), e));
            }
            for service in &file.service {
                index.services.insert(
                    format!("{prefix}.{}", service.name()),
                    (file.name(), service),
                );
            }
        }
        index
    }

    fn add_message(&mut self, file: &'a str, prefix: &str, message: &'a DescriptorProto) {
        let name = format!("{prefix}.{}", message.name());
        for nested in &message.nested_type {
            self.add_message(file, &name, nested);
        }
        for e in &message.enum_type {
            self.enums.insert(format!("{name}.{}", e.name()), (file, e));
        }
        self.messages.insert(name, (file, message));
    }
}

/// The changes from `baseline` to `current`.
fn compare(baseline: &FileDescriptorSet, current: &FileDescriptorSet) -> Changes {
    let (old, new) = (Index::of(baseline), Index::of(current));
    let mut changes = Changes::default();
    let mut breaking = |file: &str, change: String| {
        changes.breaking.push(Breaking {
            file: file.to_owned(),
            change,
        });
    };
    for (name, (file, message)) in &old.messages {
        match new.messages.get(name) {
            None => breaking(file, format!("message {name} removed")),
            Some((_, now)) => compare_fields(name, message, now, &mut |c| breaking(file, c)),
        }
    }
    for (name, (file, e)) in &old.enums {
        match new.enums.get(name) {
            None => breaking(file, format!("enum {name} removed")),
            Some((_, now)) => compare_enum_values(name, e, now, &mut |c| breaking(file, c)),
        }
    }
    for (name, (file, service)) in &old.services {
        match new.services.get(name) {
            None => breaking(file, format!("service {name} removed")),
            Some((_, now)) => compare_methods(name, service, now, &mut |c| breaking(file, c)),
        }
    }
    changes.additions = additions(&old, &new);
    changes
}

/// What a field carries, for comparison: its type, message or enum type and
/// whether it is repeated (a map is a repeated entry message).
fn field_type(field: &FieldDescriptorProto) -> String {
    let repeated = if field.label() == Label::Repeated {
        "repeated "
    } else {
        ""
    };
    let ty = match field.type_name() {
        "" => format!("{:?}", field.r#type()),
        name => name.trim_start_matches('.').to_owned(),
    };
    format!("{repeated}{ty}")
}

fn compare_fields(
    message: &str,
    old: &DescriptorProto,
    new: &DescriptorProto,
    breaking: &mut dyn FnMut(String),
) {
    let reserved = |number: i32| {
        // A message's reserved range ends before `end`.
        new.reserved_range
            .iter()
            .any(|r| (r.start()..r.end()).contains(&number))
    };
    for field in &old.field {
        let (name, number) = (field.name(), field.number());
        let same_number = new.field.iter().find(|f| f.number() == number);
        let same_name = new.field.iter().find(|f| f.name() == name);
        match (same_number, same_name) {
            (Some(now), _) if now.name() != name => breaking(format!(
                "field {message}.{name} = {number} renamed to {}",
                now.name()
            )),
            (Some(now), _) if field_type(now) != field_type(field) => breaking(format!(
                "field {message}.{name} = {number} retyped from {} to {}",
                field_type(field),
                field_type(now)
            )),
            (Some(_), _) => {}
            (None, Some(now)) => breaking(format!(
                "field {message}.{name} renumbered from {number} to {}",
                now.number()
            )),
            (None, None) => {
                let name_reserved = new.reserved_name.iter().any(|n| n == name);
                if let Some(missing) =
                    missing_reservation(number, reserved(number), name, name_reserved)
                {
                    breaking(format!(
                        "field {message}.{name} = {number} removed without {missing}"
                    ));
                }
            }
        }
    }
}

/// What a removed field or enum value lacks: both its number and its name
/// must be `reserved`, so neither is reused with another meaning.
fn missing_reservation(
    number: i32,
    number_reserved: bool,
    name: &str,
    name_reserved: bool,
) -> Option<String> {
    match (number_reserved, name_reserved) {
        (true, true) => None,
        (false, true) => Some(format!("`reserved {number};`")),
        (true, false) => Some(format!("`reserved \"{name}\";`")),
        (false, false) => Some(format!("`reserved {number};` and `reserved \"{name}\";`")),
    }
}

fn compare_enum_values(
    e: &str,
    old: &EnumDescriptorProto,
    new: &EnumDescriptorProto,
    breaking: &mut dyn FnMut(String),
) {
    let reserved = |number: i32| {
        // An enum's reserved range includes `end`.
        new.reserved_range
            .iter()
            .any(|r| (r.start()..=r.end()).contains(&number))
    };
    for value in &old.value {
        let (name, number) = (value.name(), value.number());
        match new.value.iter().find(|v| v.number() == number) {
            Some(now) if now.name() != name => breaking(format!(
                "enum value {e}.{name} = {number} renamed to {}",
                now.name()
            )),
            Some(_) => {}
            None => {
                let name_reserved = new.reserved_name.iter().any(|n| n == name);
                if let Some(missing) =
                    missing_reservation(number, reserved(number), name, name_reserved)
                {
                    breaking(format!(
                        "enum value {e}.{name} = {number} removed without {missing}"
                    ));
                }
            }
        }
    }
}

fn compare_methods(
    service: &str,
    old: &ServiceDescriptorProto,
    new: &ServiceDescriptorProto,
    breaking: &mut dyn FnMut(String),
) {
    let signature = |m: &prost_types::MethodDescriptorProto| {
        let stream = |yes: bool| if yes { "stream " } else { "" };
        format!(
            "({}{}) returns ({}{})",
            stream(m.client_streaming()),
            m.input_type().trim_start_matches('.'),
            stream(m.server_streaming()),
            m.output_type().trim_start_matches('.'),
        )
    };
    for method in &old.method {
        let name = method.name();
        match new.method.iter().find(|m| m.name() == name) {
            None => breaking(format!("rpc {service}.{name} removed")),
            Some(now) if signature(now) != signature(method) => breaking(format!(
                "rpc {service}.{name} changed from {} to {}",
                signature(method),
                signature(now)
            )),
            Some(_) => {}
        }
    }
}

/// The elements of `new` that `old` lacks.
fn additions(old: &Index<'_>, new: &Index<'_>) -> Vec<String> {
    let mut added = Vec::new();
    for (name, (_, message)) in &new.messages {
        match old.messages.get(name) {
            None => added.push(format!("message {name}")),
            Some((_, before)) => added.extend(
                message
                    .field
                    .iter()
                    // A renumbered field is reported as breaking, not added.
                    .filter(|f| {
                        !before
                            .field
                            .iter()
                            .any(|b| b.number() == f.number() || b.name() == f.name())
                    })
                    .map(|f| format!("field {name}.{} = {}", f.name(), f.number())),
            ),
        }
    }
    for (name, (_, e)) in &new.enums {
        match old.enums.get(name) {
            None => added.push(format!("enum {name}")),
            Some((_, before)) => added.extend(
                e.value
                    .iter()
                    .filter(|v| !before.value.iter().any(|b| b.number() == v.number()))
                    .map(|v| format!("enum value {name}.{} = {}", v.name(), v.number())),
            ),
        }
    }
    for (name, (_, service)) in &new.services {
        match old.services.get(name) {
            None => added.push(format!("service {name}")),
            Some((_, before)) => added.extend(
                service
                    .method
                    .iter()
                    .filter(|m| !before.method.iter().any(|b| b.name() == m.name()))
                    .map(|m| format!("rpc {name}.{}", m.name())),
            ),
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use protox::Compiler;
    use protox::file::{File, FileResolver};

    use super::*;

    /// One in-memory `.proto` file.
    struct Source(String);

    impl FileResolver for Source {
        fn open_file(&self, name: &str) -> Result<File, protox::Error> {
            if name == "auditrail/v1/test.proto" {
                File::from_source(name, &self.0)
            } else {
                Err(protox::Error::file_not_found(name))
            }
        }
    }

    /// The normalised descriptor of a `package auditrail.v1;` file with
    /// `body`.
    fn compile(body: &'static str) -> FileDescriptorSet {
        let source = format!("syntax = \"proto3\";\npackage auditrail.v1;\n{body}");
        let mut compiler = Compiler::with_file_resolver(Source(source));
        compiler
            .open_file("auditrail/v1/test.proto")
            .expect("the test's .proto compiles");
        normalise(compiler.file_descriptor_set())
    }

    const BASE: &str = "
        message Event { string id = 1; int64 size = 2; repeated string tags = 3; }
        message Req { string q = 1; }
        enum Kind { KIND_UNSPECIFIED = 0; KIND_KUBE = 1; }
        service Query { rpc Search(Req) returns (stream Event); rpc Count(Req) returns (Event); }
    ";

    fn breaking(body: &'static str) -> Vec<String> {
        compare(&compile(BASE), &compile(body))
            .breaking
            .into_iter()
            .map(|b| {
                assert_eq!(b.file, "auditrail/v1/test.proto");
                b.change
            })
            .collect()
    }

    #[test]
    fn the_same_contract_has_no_changes() {
        let changes = compare(&compile(BASE), &compile(BASE));
        assert_eq!(changes.breaking, []);
        assert_eq!(changes.additions, Vec::<String>::new());
    }

    #[test]
    fn a_renumbered_field_is_breaking_and_not_an_addition() {
        const RENUMBERED: &str =
            "message Event { string id = 1; int64 size = 4; repeated string tags = 3; }
             message Req { string q = 1; }
             enum Kind { KIND_UNSPECIFIED = 0; KIND_KUBE = 1; }
             service Query { rpc Search(Req) returns (stream Event); rpc Count(Req) returns (Event); }";
        assert_eq!(
            breaking(RENUMBERED),
            ["field auditrail.v1.Event.size renumbered from 2 to 4"]
        );
        assert_eq!(
            compare(&compile(BASE), &compile(RENUMBERED)).additions,
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_retyped_field_is_breaking() {
        let found = breaking(
            "message Event { string id = 1; int32 size = 2; string tags = 3; }
             message Req { string q = 1; }
             enum Kind { KIND_UNSPECIFIED = 0; KIND_KUBE = 1; }
             service Query { rpc Search(Req) returns (stream Event); rpc Count(Req) returns (Event); }",
        );
        assert_eq!(
            found,
            [
                "field auditrail.v1.Event.size = 2 retyped from Int64 to Int32",
                "field auditrail.v1.Event.tags = 3 retyped from repeated String to String",
            ]
        );
    }

    #[test]
    fn a_removed_rpc_or_a_changed_signature_is_breaking() {
        let found = breaking(
            "message Event { string id = 1; int64 size = 2; repeated string tags = 3; }
             message Req { string q = 1; }
             enum Kind { KIND_UNSPECIFIED = 0; KIND_KUBE = 1; }
             service Query { rpc Search(Req) returns (Event); }",
        );
        assert_eq!(
            found,
            [
                "rpc auditrail.v1.Query.Search changed from (auditrail.v1.Req) returns \
                 (stream auditrail.v1.Event) to (auditrail.v1.Req) returns (auditrail.v1.Event)",
                "rpc auditrail.v1.Query.Count removed",
            ]
        );
    }

    #[test]
    fn a_removed_field_must_be_reserved() {
        let unreserved = breaking(
            "message Event { string id = 1; repeated string tags = 3; }
             message Req { string q = 1; }
             enum Kind { KIND_UNSPECIFIED = 0; KIND_KUBE = 1; }
             service Query { rpc Search(Req) returns (stream Event); rpc Count(Req) returns (Event); }",
        );
        assert_eq!(
            unreserved,
            [
                "field auditrail.v1.Event.size = 2 removed without `reserved 2;` and `reserved \"size\";`"
            ]
        );
        let number_only = breaking(
            "message Event { string id = 1; reserved 2; repeated string tags = 3; }
             message Req { string q = 1; }
             enum Kind { KIND_UNSPECIFIED = 0; KIND_KUBE = 1; }
             service Query { rpc Search(Req) returns (stream Event); rpc Count(Req) returns (Event); }",
        );
        assert_eq!(
            number_only,
            ["field auditrail.v1.Event.size = 2 removed without `reserved \"size\";`"]
        );
        let reserved = breaking(
            "message Event { string id = 1; reserved 2; reserved \"size\"; repeated string tags = 3; }
             message Req { string q = 1; }
             enum Kind { KIND_UNSPECIFIED = 0; KIND_KUBE = 1; }
             service Query { rpc Search(Req) returns (stream Event); rpc Count(Req) returns (Event); }",
        );
        assert_eq!(reserved, Vec::<String>::new());
    }

    #[test]
    fn removed_messages_enums_and_enum_values_are_breaking() {
        let found = breaking(
            "message Event { string id = 1; int64 size = 2; repeated string tags = 3; }
             message Req { string q = 1; }
             enum Kind { KIND_UNSPECIFIED = 0; reserved 1; reserved \"KIND_KUBE\"; }
             service Query { rpc Search(Req) returns (stream Event); rpc Count(Req) returns (Event); }",
        );
        assert_eq!(found, Vec::<String>::new(), "a reserved enum value");
        let found = breaking(
            "message Event { string id = 1; int64 size = 2; repeated string tags = 3; }
             message Req { string query = 1; }
             enum Kind { KIND_UNSPECIFIED = 0; }
             service Query { rpc Search(Req) returns (stream Event); rpc Count(Req) returns (Event); }",
        );
        assert_eq!(
            found,
            [
                "field auditrail.v1.Req.q = 1 renamed to query",
                "enum value auditrail.v1.Kind.KIND_KUBE = 1 removed without `reserved 1;` and \
                 `reserved \"KIND_KUBE\";`",
            ]
        );
    }

    #[test]
    fn additions_are_not_breaking_and_are_listed() {
        let changes = compare(
            &compile(BASE),
            &compile(
                "message Event { string id = 1; int64 size = 2; repeated string tags = 3; string cluster = 4; }
                 message Req { string q = 1; }
                 message Stats { int64 events = 1; }
                 enum Kind { KIND_UNSPECIFIED = 0; KIND_KUBE = 1; KIND_EE = 2; }
                 service Query { rpc Search(Req) returns (stream Event); rpc Count(Req) returns (Event);
                                 rpc Stats(Req) returns (Stats); }",
            ),
        );
        assert_eq!(changes.breaking, []);
        assert_eq!(
            changes.additions,
            [
                "field auditrail.v1.Event.cluster = 4",
                "message auditrail.v1.Stats",
                "enum value auditrail.v1.Kind.KIND_EE = 2",
                "rpc auditrail.v1.Query.Stats",
            ]
        );
    }

    #[test]
    fn the_text_baseline_reads_back_as_written() {
        let set = compile(BASE);
        let read = from_text(&to_text(&set)).expect("the baseline text parses");
        assert_eq!(read, set);
    }
}

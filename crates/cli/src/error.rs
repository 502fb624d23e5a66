//! How every `auditrail` command reports a failure: one line on stderr,
//! `error: ` and the chain of causes joined by `: `.
//!
//! - A failed call reads `<Rpc> failed: <the server's message> (<CODE>)`,
//!   the code being gRPC's canonical upper-case name (`NOT_FOUND`,
//!   `INVALID_ARGUMENT`, …), never the `Debug` text of `tonic::Status`.
//! - The server names request fields (`eks.cluster_name`); where the user
//!   typed a flag, the message names the flag (`--eks-cluster`).
//! - A cause whose text the previous one already contains is left out
//!   (transport errors repeat their source: "tcp connect error: Connection
//!   refused (os error 111)" then "Connection refused (os error 111)").

use std::fmt;

/// A call that failed: the RPC's name and the status the server (or the
/// in-process provisioner) answered.
#[derive(Debug)]
pub(crate) struct RpcError {
    rpc: String,
    status: tonic::Status,
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.rpc, status_text(&self.status))
    }
}

impl std::error::Error for RpcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.status)
    }
}

/// The error for `rpc` answered with `status`.
pub(crate) fn rpc(rpc: &str, status: &tonic::Status) -> anyhow::Error {
    RpcError {
        rpc: rpc.to_owned(),
        status: status.clone(),
    }
    .into()
}

/// The line printed for `error`: `error: ` and its causes, deduplicated.
pub(crate) fn render(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = match cause.downcast_ref::<tonic::Status>() {
            // A status that reached here without `rpc`: still no Debug text.
            Some(status) => status_text(status),
            None => cause.to_string(),
        };
        let text = text.trim();
        if text.is_empty() || parts.last().is_some_and(|last| last.contains(text)) {
            continue;
        }
        parts.push(text.to_owned());
    }
    format!("error: {}", parts.join(": "))
}

/// `<message> (<CODE>)`, the message in the user's terms.
fn status_text(status: &tonic::Status) -> String {
    let message = flag_names(status.message().trim());
    if message.is_empty() {
        format!("({})", code_name(status.code()))
    } else {
        format!("{message} ({})", code_name(status.code()))
    }
}

/// gRPC's canonical name of `code`, as other gRPC tools print it.
pub(crate) fn code_name(code: tonic::Code) -> &'static str {
    auditrail_server::code_name(code)
}

/// Request fields the provisioner names in its messages, and what the user
/// typed for them. Longer paths first, so that a path is never replaced by
/// the entry of its prefix.
const FIELDS: &[(&str, &str)] = &[
    ("attributes.non_resource.path", "--path"),
    ("attributes.resource.resource", "--resource"),
    ("attributes.non_resource", "--path"),
    ("attributes.resource", "--resource"),
    ("attributes.target", "--resource or --path"),
    ("attributes.verb", "--verb"),
    ("eks.aws_access_key_id", "--aws-access-key-id"),
    ("eks.aws_secret_access_key", "--aws-secret-access-key"),
    ("eks.cluster_name", "--eks-cluster"),
    ("eks.fetch_interval_seconds", "--eks-fetch-interval"),
    ("eks.log_group", "--eks-log-group"),
    ("eks.region", "--eks-region"),
    ("eks.stream_prefix", "--eks-stream-prefix"),
    ("extra_resources", "--extra-resource"),
    ("log_path", "--log-path"),
    ("max_age_days", "--max-age-days"),
    ("max_backups", "--max-backups"),
    ("max_size_mb", "--max-size-mb"),
    ("policy_path", "--policy-path"),
    ("policy_yaml", "the policy file"),
];

/// Fields that are ordinary words too: replaced only where they open the
/// message as its subject (`eks: …`, `platform is required: …`).
const LEADING_FIELDS: &[(&str, &str)] = &[
    ("eks", "--eks-cluster and --eks-region"),
    ("platform", "--platform"),
];

/// `message` with the request fields it names replaced by the flags.
pub(crate) fn flag_names(message: &str) -> String {
    let mut message = message.to_owned();
    for (field, flag) in LEADING_FIELDS {
        if let Some(rest) = message.strip_prefix(field)
            && (rest.starts_with(": ") || rest.starts_with(" is required"))
        {
            message = format!("{flag}{rest}");
            break;
        }
    }
    let mut out = String::with_capacity(message.len());
    let mut rest = message.as_str();
    let mut previous: Option<char> = None;
    'scan: while let Some(c) = rest.chars().next() {
        if !previous.is_some_and(is_field_char) {
            for (field, flag) in FIELDS {
                if let Some(after) = rest.strip_prefix(field) {
                    // `extra_resources[1]`: the index means nothing on the
                    // command line, where the flag is repeated.
                    let after = strip_index(after);
                    // A longer name goes on with a letter, `_` or `.x`; a
                    // sentence may end right after the field.
                    let longer = after.chars().next().is_some_and(is_word_char)
                        || after
                            .strip_prefix('.')
                            .is_some_and(|x| x.chars().next().is_some_and(is_word_char));
                    if !longer {
                        out.push_str(flag);
                        previous = flag.chars().last();
                        rest = after;
                        continue 'scan;
                    }
                }
            }
        }
        out.push(c);
        previous = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_field_char(c: char) -> bool {
    is_word_char(c) || c == '.'
}

/// `text` without a leading `[digits]`.
fn strip_index(text: &str) -> &str {
    text.strip_prefix('[')
        .and_then(|inner| {
            let digits = inner.len() - inner.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            (digits > 0).then(|| inner[digits..].strip_prefix(']'))?
        })
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;
    use tonic::{Code, Status};

    #[test]
    fn an_rpc_error_is_its_message_and_the_canonical_code() {
        let error = rpc(
            "History",
            &Status::not_found("no versions of networkpolicies prod/x"),
        );
        assert_eq!(
            render(&error),
            "error: History failed: no versions of networkpolicies prod/x (NOT_FOUND)"
        );
        let error = rpc("Search", &Status::new(Code::Unavailable, ""));
        assert_eq!(render(&error), "error: Search failed: (UNAVAILABLE)");
    }

    #[test]
    fn a_status_in_a_context_chain_is_never_debug_text() {
        let result: Result<(), Status> =
            Err(Status::invalid_argument("selector at position 3: oops"));
        let error = result.context("GetIndexStats failed").unwrap_err();
        let line = render(&error);
        assert_eq!(
            line,
            "error: GetIndexStats failed: selector at position 3: oops (INVALID_ARGUMENT)"
        );
        assert!(!line.contains("MetadataMap") && !line.contains("details"));
    }

    #[test]
    fn every_code_has_its_canonical_name() {
        for (code, name) in [
            (Code::Ok, "OK"),
            (Code::Cancelled, "CANCELLED"),
            (Code::Unknown, "UNKNOWN"),
            (Code::InvalidArgument, "INVALID_ARGUMENT"),
            (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
            (Code::NotFound, "NOT_FOUND"),
            (Code::AlreadyExists, "ALREADY_EXISTS"),
            (Code::PermissionDenied, "PERMISSION_DENIED"),
            (Code::ResourceExhausted, "RESOURCE_EXHAUSTED"),
            (Code::FailedPrecondition, "FAILED_PRECONDITION"),
            (Code::Aborted, "ABORTED"),
            (Code::OutOfRange, "OUT_OF_RANGE"),
            (Code::Unimplemented, "UNIMPLEMENTED"),
            (Code::Internal, "INTERNAL"),
            (Code::Unavailable, "UNAVAILABLE"),
            (Code::DataLoss, "DATA_LOSS"),
            (Code::Unauthenticated, "UNAUTHENTICATED"),
        ] {
            assert_eq!(code_name(code), name);
        }
    }

    #[test]
    fn causes_contained_in_the_previous_one_are_left_out() {
        let io = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        let error = anyhow::Error::new(io)
            .context("tcp connect error: Connection refused (os error 111)")
            .context("transport error")
            .context("cannot reach http://127.0.0.1:9");
        assert_eq!(
            render(&error),
            "error: cannot reach http://127.0.0.1:9: transport error: tcp connect error: Connection refused (os error 111)"
        );
        // Different text is kept; contained text is left out wherever it
        // sits in the previous cause.
        let error = anyhow::anyhow!("gamma").context("beta").context("alpha");
        assert_eq!(render(&error), "error: alpha: beta: gamma");
        let error = anyhow::anyhow!("refused").context("connect: refused (111)");
        assert_eq!(render(&error), "error: connect: refused (111)");
    }

    #[test]
    fn provisioner_fields_become_the_flags_the_user_typed() {
        for (server, user) in [
            (
                "eks.cluster_name: \"prod!\" is not an EKS cluster name",
                "--eks-cluster: \"prod!\" is not an EKS cluster name",
            ),
            ("eks.region: is required", "--eks-region: is required"),
            (
                "eks.log_group: \"a b\" is not a CloudWatch log group name",
                "--eks-log-group: \"a b\" is not a CloudWatch log group name",
            ),
            (
                "eks.fetch_interval_seconds: must be positive",
                "--eks-fetch-interval: must be positive",
            ),
            (
                "eks.aws_access_key_id: give both the access key id and the secret access key, or neither",
                "--aws-access-key-id: give both the access key id and the secret access key, or neither",
            ),
            (
                "eks: EKS needs the cluster name and region",
                "--eks-cluster and --eks-region: EKS needs the cluster name and region",
            ),
            (
                "extra_resources[1]: extra resource \"apps/\": the resource name is empty",
                "--extra-resource: extra resource \"apps/\": the resource name is empty",
            ),
            (
                "extra_resources: extra resource \"A/b\": bad group",
                "--extra-resource: extra resource \"A/b\": bad group",
            ),
            (
                "log_path: \"x\" must be an absolute file path below a directory",
                "--log-path: \"x\" must be an absolute file path below a directory",
            ),
            (
                "policy_path: \"p\" must be an absolute path",
                "--policy-path: \"p\" must be an absolute path",
            ),
            (
                "policy_yaml does not validate: rules[0].level: Unsupported value",
                "the policy file does not validate: rules[0].level: Unsupported value",
            ),
            ("attributes.verb is required", "--verb is required"),
            (
                "attributes.resource.resource is required",
                "--resource is required",
            ),
            (
                "attributes.non_resource.path is required",
                "--path is required",
            ),
            (
                "attributes.target is required: set attributes.resource or attributes.non_resource",
                "--resource or --path is required: set --resource or --path",
            ),
            (
                "platform is required: onprem, eks, kops, rke",
                "--platform is required: onprem, eks, kops, rke",
            ),
            (
                "max_size_mb, max_backups and max_age_days",
                "--max-size-mb, --max-backups and --max-age-days",
            ),
        ] {
            assert_eq!(flag_names(server), user, "{server}");
        }
    }

    #[test]
    fn words_and_longer_names_are_left_alone() {
        for text in [
            "OpenShift is not supported: the platform manages its own audit policy",
            "the eks cluster is unknown",
            "my_log_path is wrong",
            "log_path_extra is wrong",
            "rules[0].policy_yaml.x is not a flag",
            "extra_resources_total",
            "",
        ] {
            assert_eq!(flag_names(text), text);
        }
        // A field at the end of a sentence is still the field.
        assert_eq!(flag_names("check eks.region."), "check --eks-region.");
    }

    #[test]
    fn server_fields_are_mapped_in_rendered_errors() {
        let error = rpc(
            "RenderSetup",
            &Status::invalid_argument("eks.cluster_name: is required"),
        );
        assert_eq!(
            render(&error),
            "error: RenderSetup failed: --eks-cluster: is required (INVALID_ARGUMENT)"
        );
    }
}

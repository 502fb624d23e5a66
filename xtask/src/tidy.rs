//! `cargo xtask tidy`: the checks that keep the workspace's map true, run
//! early by `cargo xtask test`.
//!
//! Each check returns the rules it found broken, each naming the file or
//! crate and the rule, so one run reports every problem at once:
//!
//! - [`deps`]: the allowed dependency directions between workspace crates.
//! - [`module_docs`]: a `//!` module doc at the top of every `.rs` file.
//! - [`files`]: no tracked file outside the allow-listed folders and
//!   extensions.
//! - [`unused_deps`]: no unused dependency (`cargo machete`).
//! - [`rustdoc`]: `cargo doc --workspace --no-deps` without warnings.
//! - [`proto`]: the `auditrail.v1` protobuf contract never breaks against
//!   its committed baseline (`--bless-proto` rewrites the baseline).

mod deps;
mod files;
mod module_docs;
mod proto;
mod rustdoc;
mod unused_deps;

use std::path::Path;

use anyhow::bail;

use crate::cargo::workspace_root;

/// Options of `cargo xtask tidy`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct TidyArgs {
    /// Rewrite the protobuf baseline (proto/baseline/) from the current
    /// .proto files, accepting every change. Additions may always be
    /// recorded; proto/README.md says when a breaking change may be.
    #[arg(long)]
    bless_proto: bool,
}

/// One broken rule: where, and which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The file or crate at fault.
    pub(crate) at: String,
    /// The rule it breaks, and how to fix it where that is not obvious.
    pub(crate) rule: String,
}

impl Violation {
    pub(crate) fn new(at: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            at: at.into(),
            rule: rule.into(),
        }
    }
}

/// A check: the rules it finds broken in the workspace at the given root.
type Check = fn(&Path) -> anyhow::Result<Vec<Violation>>;

/// Every check, cheapest first.
const CHECKS: [(&str, Check); 6] = [
    ("dependency directions", deps::check),
    ("module docs", module_docs::check),
    ("tracked files", files::check),
    ("protobuf contract", proto::check),
    ("unused dependencies", unused_deps::check),
    ("cargo doc", rustdoc::check),
];

/// Runs every check and fails with the list of broken rules, if any.
pub(crate) fn run(args: &TidyArgs) -> anyhow::Result<()> {
    let root = workspace_root();
    if args.bless_proto {
        proto::bless(&root)?;
    }
    let mut failed = 0;
    for (name, check) in CHECKS {
        eprintln!("tidy: {name}");
        let violations = check(&root)?;
        for violation in &violations {
            eprintln!("tidy error: {}: {}", violation.at, violation.rule);
        }
        failed += violations.len();
    }
    if failed > 0 {
        bail!("tidy found {failed} broken rule(s), listed above");
    }
    Ok(())
}

//! `cargo doc --workspace --no-deps` without warnings: a broken intra-doc
//! link or a malformed doc comment fails here instead of rotting unseen.

use std::path::Path;

use super::Violation;
use crate::cargo::cargo;

pub(super) fn check(_root: &Path) -> anyhow::Result<Vec<Violation>> {
    let mut flags = std::env::var("RUSTDOCFLAGS").unwrap_or_default();
    flags.push_str(" -D warnings");
    let mut doc = cargo();
    doc.env("RUSTDOCFLAGS", flags.trim())
        // Every crate's warnings in one run, not only the first failing one's.
        .args([
            "doc",
            "--workspace",
            "--no-deps",
            "--locked",
            "--keep-going",
        ]);
    eprintln!("$ {doc:?}");
    let status = doc.status()?;
    Ok(if status.success() {
        Vec::new()
    } else {
        vec![Violation::new(
            "the workspace",
            "cargo doc --workspace --no-deps has warnings (rustdoc's messages above)",
        )]
    })
}

//! Every `.rs` file of the workspace (sources, tests, benches, build
//! scripts, xtask) opens with a `//!` module doc saying why it exists: the
//! map of the code is read from them.

use std::path::Path;

use anyhow::Context as _;

use super::Violation;
use super::files::tracked_files;

pub(super) fn check(root: &Path) -> anyhow::Result<Vec<Violation>> {
    let mut found = Vec::new();
    for path in tracked_files(root)? {
        if Path::new(&path).extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(root.join(&path))
            .with_context(|| format!("cannot read {path}"))?;
        if !starts_with_module_doc(&text) {
            found.push(Violation::new(
                path,
                "no module doc: the file must open with `//!` lines saying why it exists",
            ));
        }
    }
    Ok(found)
}

/// Whether the first non-blank line of `text` is a `//!` inner doc comment.
fn starts_with_module_doc(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .is_some_and(|line| line.starts_with("//!"))
}

#[cfg(test)]
mod tests {
    use super::starts_with_module_doc;

    #[test]
    fn a_leading_module_doc_is_found() {
        assert!(starts_with_module_doc("//! Why.\n\nuse std::io;\n"));
        assert!(starts_with_module_doc("\n\n//! After blank lines.\n"));
    }

    #[test]
    fn anything_else_first_is_refused() {
        assert!(!starts_with_module_doc(""));
        assert!(!starts_with_module_doc("use std::io;\n//! Too late.\n"));
        assert!(!starts_with_module_doc(
            "// A plain comment.\n//! Too late.\n"
        ));
        assert!(!starts_with_module_doc("/// An item doc.\nfn f() {}\n"));
        assert!(!starts_with_module_doc(
            "#![allow(dead_code)]\n//! Too late.\n"
        ));
    }
}

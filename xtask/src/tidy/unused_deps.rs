//! No unused dependency: `cargo machete` (installed by xtask into the tools
//! folder it owns) reads each crate's sources for the crates its manifest
//! names. It only greps, so a crate used solely through a macro's expansion
//! can look unused: such a crate is listed, with a comment saying why, under
//! `[package.metadata.cargo-machete] ignored` in its manifest.

use std::path::Path;

use anyhow::{Context as _, bail};

use super::Violation;
use crate::tools;

pub(super) fn check(root: &Path) -> anyhow::Result<Vec<Violation>> {
    let machete = tools::ensure_cargo_machete()?;
    // Without `--with-metadata`: that mode may rewrite Cargo.lock and does
    // not see build scripts' dependencies.
    let output = std::process::Command::new(&machete)
        .arg(".")
        .current_dir(root)
        .output()
        .with_context(|| format!("cannot run {}", machete.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let found = parse_report(&stdout);
    // 0: none unused; 1: some unused; anything else: machete failed.
    match output.status.code() {
        Some(0) => Ok(Vec::new()),
        Some(1) if !found.is_empty() => Ok(found),
        _ => bail!(
            "cargo machete failed ({}):\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// The unused dependencies of machete's report, which lists each crate as
/// `name -- path/Cargo.toml:` followed by its unused dependencies, one per
/// indented line.
fn parse_report(report: &str) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut manifest = None;
    for line in report.lines() {
        if let Some((_, path)) = line.split_once(" -- ") {
            let path = path.trim_end_matches(':').trim_start_matches("./");
            manifest = Some(path.to_owned());
        } else if line.starts_with(char::is_whitespace)
            && !line.trim().is_empty()
            && let Some(manifest) = &manifest
        {
            found.push(Violation::new(
                manifest.as_str(),
                format!(
                    "unused dependency {}: remove it, or if it is used where machete cannot \
                     see it (a macro's expansion), list it under \
                     [package.metadata.cargo-machete] ignored with a comment",
                    line.trim()
                ),
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::parse_report;

    #[test]
    fn each_unused_dependency_is_named_with_its_manifest() {
        let report = "\
Analyzing dependencies of crates in ....
cargo-machete found the following unused dependencies in this directory:
auditrail-proto -- ./proto/Cargo.toml:
\tjiff
\tprost-types
xtask -- ./xtask/Cargo.toml:
\tbase64

If you believe cargo-machete has detected an unused dependency incorrectly,
you can add the dependency to the list of dependencies to ignore in the
`[package.metadata.cargo-machete]` section of the appropriate Cargo.toml.
";
        let found = parse_report(report);
        let named: Vec<_> = found
            .iter()
            .map(|v| (v.at.as_str(), v.rule.split(':').next().unwrap_or_default()))
            .collect();
        assert_eq!(
            named,
            [
                ("proto/Cargo.toml", "unused dependency jiff"),
                ("proto/Cargo.toml", "unused dependency prost-types"),
                ("xtask/Cargo.toml", "unused dependency base64"),
            ]
        );
    }

    #[test]
    fn a_clean_report_names_nothing() {
        let report = "Analyzing dependencies of crates in ....\ncargo-machete didn't find any unused dependencies in this directory. Good job!\n";
        assert!(parse_report(report).is_empty());
    }
}

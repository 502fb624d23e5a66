//! No file in git outside an allow-list of folders and extensions: build
//! output, local data directories and editor files stay out of the
//! repository, and every data folder is one someone chose to commit.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

use super::Violation;

/// Files allowed at the top of the repository, by exact path.
const ROOT_FILES: [&str; 11] = [
    ".gitignore",
    ".dockerignore",
    "Dockerfile",
    ".cargo/config.toml",
    ".ci/run",
    "Cargo.toml",
    "Cargo.lock",
    "clippy.toml",
    "README.md",
    "ARCHITECTURE.md",
    "BENCHMARKS.md",
];

/// Folders and the extensions allowed anywhere under them (the part of the
/// file name after its last dot: `fuzz.proptest-regressions` is
/// `proptest-regressions`, `lib.rs.orig` is `orig`). Code folders first, then the data folders, each
/// listed on purpose.
const FOLDERS: [(&str, &[&str]); 15] = [
    // Code.
    ("crates/", CODE),
    ("services/", CODE),
    ("integration-tests/", CODE),
    ("xtask/", CODE),
    ("proto/", &["rs", "toml", "md", "proto"]),
    // The baseline the protobuf contract is checked against (tidy's proto check).
    ("proto/baseline/", &["txtpb"]),
    // Data: test fixtures and golden files.
    ("crates/event/tests/", &["tsv"]),
    ("crates/policy/tests/fixtures/", &["yaml"]),
    ("crates/policy-gen/tests/golden/", &["yaml"]),
    ("crates/setup/tests/golden/", &["txt"]),
    // Data: proptest's regression seeds (the failing cases it found).
    ("services/query/proptest-regressions/", &["txt"]),
    // Data: deployment and dashboards.
    (
        "charts/",
        // Chart.lock: the pinned file:// dependencies `helm dependency
        // build` reads (the built charts/*/charts/ are ignored).
        &["md", "yaml", "tpl", "txt", "json", "helmignore", "lock"],
    ),
    ("kibana/", &["md", "ndjson"]),
    // The console's pages, embedded in its binary (written here, nothing
    // vendored).
    ("services/console/assets/", &["html", "js", "css"]),
    // Pictures the README shows (the console's timeline).
    ("docs/", &["png"]),
];

/// What code folders may hold: Rust, manifests, docs, proptest's
/// regression files.
const CODE: &[&str] = &["rs", "toml", "md", "proptest-regressions"];

pub(super) fn check(root: &Path) -> anyhow::Result<Vec<Violation>> {
    Ok(tracked_files(root)?
        .into_iter()
        .filter(|path| !allowed(path))
        .map(|path| {
            Violation::new(
                path,
                "a file outside the allow-list of folders and extensions: remove it from git \
                 (and .gitignore it), or add its folder to FOLDERS in xtask/src/tidy/files.rs",
            )
        })
        .collect())
}

/// The files git tracks or would track (not ignored) that exist on disk,
/// relative to `root`, with `/` separators.
pub(super) fn tracked_files(root: &Path) -> anyhow::Result<Vec<String>> {
    let output = Command::new("git")
        .current_dir(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .context("cannot run git ls-files")?;
    if !output.status.success() {
        bail!(
            "git ls-files failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut files: Vec<String> = output
        .stdout
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        // A file deleted but not yet staged is listed and gone.
        .filter(|name| root.join(name).is_file())
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

fn allowed(path: &str) -> bool {
    if ROOT_FILES.contains(&path) {
        return true;
    }
    let file_name = path.rsplit('/').next().unwrap_or(path);
    let Some((_, extension)) = file_name.rsplit_once('.') else {
        return false;
    };
    FOLDERS
        .iter()
        .any(|(folder, extensions)| path.starts_with(folder) && extensions.contains(&extension))
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn code_docs_and_listed_data_pass() {
        for path in [
            "Cargo.toml",
            ".ci/run",
            "crates/event/src/lib.rs",
            "crates/event/tests/fuzz.proptest-regressions",
            "crates/policy-gen/tests/golden/calico.yaml",
            "services/query/proptest-regressions/fuzz.txt",
            "proto/auditrail/v1/query.proto",
            "proto/baseline/auditrail.v1.txtpb",
            "kibana/auditrail.ndjson",
            "Dockerfile",
            "charts/auditrail/values.schema.json",
            "charts/lib/templates/_helpers.tpl",
            "charts/auditrail/templates/NOTES.txt",
            "charts/auditrail/Chart.lock",
        ] {
            assert!(allowed(path), "{path}");
        }
    }

    #[test]
    fn data_outside_the_listed_folders_is_refused() {
        for path in [
            "integration-tests/auditrail-data/ingestor/dead-letters.ndjson",
            "crates/event/src/sample.json",
            "crates/store/tests/golden/out.yaml",
            "notes.txt",
            "crates/event/Makefile",
            "crates/event/src/lib.rs.orig",
        ] {
            assert!(!allowed(path), "{path}");
        }
    }
}

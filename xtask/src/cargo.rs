//! Running cargo from xtask.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context as _, bail};

/// The workspace root (the parent of `xtask/`).
pub(crate) fn workspace_root() -> PathBuf {
    // Cargo sets the variable when it runs the binary: prefer it to the
    // compile-time value, which is stale when an artifact built from another
    // checkout is reused through a shared target directory.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

static TARGET_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Where builds go when `CARGO_TARGET_DIR` is unset: outside the clone, so
/// that fresh clones share one incremental build. `None` when the caller set
/// `CARGO_TARGET_DIR` (children inherit it) or there is no home directory.
pub(crate) fn target_dir_override() -> Option<&'static Path> {
    TARGET_DIR
        .get_or_init(|| {
            if std::env::var_os("CARGO_TARGET_DIR").is_some() {
                return None;
            }
            std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/auditrail/target"))
        })
        .as_deref()
}

/// A `cargo` command in the workspace root, with the target directory set.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    if let Some(dir) = target_dir_override() {
        cmd.env("CARGO_TARGET_DIR", dir);
    }
    cmd
}

/// Runs a command, failing with its command line when it fails.
pub(crate) fn run_cmd(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("$ {}", shown.replace('"', ""));
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// Builds `package` and returns the path of its binary `bin`.
pub(crate) fn build_binary(package: &str, bin: &str, release: bool) -> anyhow::Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--message-format=json-render-diagnostics",
        "-p",
        package,
        "--bin",
        bin,
    ]);
    if release {
        cmd.arg("--release");
    }
    cmd.stderr(std::process::Stdio::inherit());
    let output = cmd.output().context("cannot run cargo build")?;
    if !output.status.success() {
        bail!("cargo build -p {package} failed");
    }
    for line in output.stdout.split(|&b| b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["name"] == bin
            && let Some(exe) = msg["executable"].as_str()
        {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("cargo build -p {package} produced no binary named {bin}")
}

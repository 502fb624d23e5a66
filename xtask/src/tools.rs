//! Tools the tests need beyond cargo, installed by `cargo xtask test` into
//! a folder it owns: `~/.cache/auditrail/tools` (beside the shared target
//! directory, so a fresh clone reuses them), or `target/tools` without a
//! home directory.
//!
//! - moto's server (PyPI `moto[server]`, pinned): the CloudWatch Logs
//!   emulator of the CloudWatch source's tests, in its own virtualenv.
//! - the chart checks' tools (PyPI, pinned), in one virtualenv:
//!   helm-python-sdk (the Helm v4 library, no `helm` binary) and
//!   kubernetes-validate (Kubernetes' OpenAPI schemas); and checkov, the
//!   policy scanner, in a virtualenv of its own (it pins many packages).
//! - Chromium and ChromeDriver (Debian's `chromium` and `chromium-driver`)
//!   for the console's browser tests: system packages, so they are
//!   installed with apt-get when missing (as root); where that cannot be
//!   done the browser tests report themselves ignored with the reason.
//! - cargo-machete (crates.io, pinned): the unused-dependency check of
//!   `cargo xtask tidy`, built from source with `cargo install --locked`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context as _;

use crate::cargo::{cargo, run_cmd, workspace_root};

/// The moto release the tests run against.
const MOTO_VERSION: &str = "5.2.5";

/// The cargo-machete release tidy runs.
const CARGO_MACHETE_VERSION: &str = "0.9.2";

/// The tests find moto's server through this variable.
pub(crate) const MOTO_SERVER_ENV: &str = "AUDITRAIL_MOTO_SERVER";

fn tools_dir() -> PathBuf {
    std::env::var_os("HOME").map_or_else(
        || workspace_root().join("target/tools"),
        |home| PathBuf::from(home).join(".cache/auditrail/tools"),
    )
}

/// The browser tests find Chromium and ChromeDriver through these
/// variables, or the reason they cannot run through the third.
pub(crate) const CHROMIUM_ENV: &str = "AUDITRAIL_CHROMIUM";
pub(crate) const CHROMEDRIVER_ENV: &str = "AUDITRAIL_CHROMEDRIVER";
pub(crate) const NO_BROWSER_ENV: &str = "AUDITRAIL_NO_BROWSER";

/// Debian's Chromium and its WebDriver, installed with apt-get when
/// missing: their paths, or why they are not there.
pub(crate) fn ensure_browser() -> Result<(PathBuf, PathBuf), String> {
    let chromium = PathBuf::from("/usr/bin/chromium");
    let driver = PathBuf::from("/usr/bin/chromedriver");
    if chromium.is_file() && driver.is_file() {
        return Ok((chromium, driver));
    }
    eprintln!("installing Debian's chromium and chromium-driver for the browser tests");
    let install = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))
            .and_then(|s| {
                if s.success() {
                    Ok(())
                } else {
                    Err(format!("apt-get {} failed ({s})", args.join(" ")))
                }
            })
    };
    let packages = ["install", "-y", "-q", "chromium", "chromium-driver"];
    if install(&packages).is_err() {
        install(&["update", "-q"])?;
        install(&packages)?;
    }
    if chromium.is_file() && driver.is_file() {
        Ok((chromium, driver))
    } else {
        Err(
            "apt-get installed chromium and chromium-driver, yet /usr/bin/chromium or \
             /usr/bin/chromedriver is missing"
                .to_owned(),
        )
    }
}

/// Installs moto's server unless this version is already there, and
/// returns the path of its `moto_server` script. An interrupted install is
/// never mistaken for a finished one: a marker file is written last.
pub(crate) fn ensure_moto() -> anyhow::Result<PathBuf> {
    let dir = ensure_venv(
        &format!("moto-{MOTO_VERSION}"),
        &[format!("moto[server]=={MOTO_VERSION}")],
    )?;
    Ok(dir.join("bin/moto_server"))
}

/// Installs cargo-machete unless this version is already there, and returns
/// the path of its binary. Like moto, a marker file written last tells a
/// finished install from an interrupted one.
pub(crate) fn ensure_cargo_machete() -> anyhow::Result<PathBuf> {
    let dir = tools_dir().join(format!("cargo-machete-{CARGO_MACHETE_VERSION}"));
    let binary = dir.join("bin/cargo-machete");
    let marker = dir.join(".installed");
    if marker.is_file() && binary.is_file() {
        return Ok(binary);
    }
    eprintln!(
        "installing cargo-machete {CARGO_MACHETE_VERSION} into {}",
        dir.display()
    );
    run_cmd(
        cargo()
            .args([
                "install",
                "--locked",
                "--quiet",
                "--force",
                "--version",
                CARGO_MACHETE_VERSION,
                "--root",
            ])
            .arg(&dir)
            .arg("cargo-machete"),
    )?;
    std::fs::write(&marker, CARGO_MACHETE_VERSION)
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(binary)
}

/// The helm-python-sdk release the chart checks render with.
pub(crate) const HELM_PYTHON_SDK_VERSION: &str = "0.2.2";

/// The kubernetes-validate release, and the Kubernetes version whose
/// schemas it validates against (one it bundles).
const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";
pub(crate) const KUBERNETES_VERSION: &str = "1.35.0";

/// The checkov release of the chart's policy scan.
const CHECKOV_VERSION: &str = "3.3.30";

/// Installs `packages` into a virtualenv named `name` under the tools
/// folder unless its marker says they are there; returns the venv's folder.
fn ensure_venv(name: &str, packages: &[String]) -> anyhow::Result<PathBuf> {
    let dir = tools_dir().join(name);
    let marker = dir.join(".installed");
    let wanted = packages.join(" ");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return Ok(dir);
    }
    eprintln!("installing {wanted} into {}", dir.display());
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove the partial install {}", dir.display()))?;
    }
    std::fs::create_dir_all(tools_dir())
        .with_context(|| format!("cannot create {}", tools_dir().display()))?;
    run_cmd(Command::new("python3").arg("-m").arg("venv").arg(&dir))
        .context("python3 with the venv module is needed")?;
    run_cmd(
        Command::new(dir.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(packages),
    )?;
    std::fs::write(&marker, &wanted)
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(dir)
}

/// Installs helm-python-sdk and kubernetes-validate; returns the path of
/// the virtualenv's python (kubernetes-validate is beside it).
pub(crate) fn ensure_chart_tools() -> anyhow::Result<PathBuf> {
    let dir = ensure_venv(
        "chart-tools",
        &[
            format!("helm-python-sdk=={HELM_PYTHON_SDK_VERSION}"),
            format!("kubernetes-validate=={KUBERNETES_VALIDATE_VERSION}"),
        ],
    )?;
    Ok(dir.join("bin/python"))
}

/// Installs checkov; returns the path of its command.
pub(crate) fn ensure_checkov() -> anyhow::Result<PathBuf> {
    let dir = ensure_venv("checkov", &[format!("checkov=={CHECKOV_VERSION}")])?;
    Ok(dir.join("bin/checkov"))
}

//! `cargo xtask install`: the `auditrail` binary on your PATH, with `cargo
//! install --path crates/cli --locked`.
//!
//! The build goes to the shared target directory (`cargo install` builds in
//! `CARGO_TARGET_DIR` when it is set, and `cargo()` sets it), so installing
//! after `cargo xtask demo` or `cargo xtask test` reuses their dependencies;
//! `--debug` reuses the very build the demo made.

use std::path::PathBuf;
use std::process::Command;

use crate::cargo::{cargo, run_cmd};

/// Options of `cargo xtask install`.
#[derive(Debug, clap::Args)]
pub(crate) struct InstallArgs {
    /// Install into DIR/bin instead of cargo's default bin directory
    /// ($CARGO_HOME/bin, usually ~/.cargo/bin).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Install the dev-profile build (what `cargo xtask demo` built: no
    /// second build, but slower) instead of an optimised release build.
    #[arg(long)]
    debug: bool,
}

/// The `cargo install` command for `args`.
fn command(args: &InstallArgs) -> Command {
    let mut cmd = cargo();
    cmd.args(["install", "--path", "crates/cli", "--locked"]);
    if args.debug {
        cmd.arg("--debug");
    }
    if let Some(root) = &args.root {
        cmd.arg("--root").arg(root);
    }
    cmd
}

pub(crate) fn run(args: &InstallArgs) -> anyhow::Result<()> {
    run_cmd(&mut command(args))?;
    let bin = args.root.as_ref().map_or_else(
        || "cargo's bin directory (usually ~/.cargo/bin)".to_owned(),
        |root| root.join("bin").display().to_string(),
    );
    eprintln!("installed auditrail into {bin}; make sure it is on your PATH");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn installs_the_cli_crate_locked() {
        let default = command(&InstallArgs {
            root: None,
            debug: false,
        });
        assert_eq!(
            args(&default),
            ["install", "--path", "crates/cli", "--locked"]
        );
        assert_eq!(
            default.get_current_dir(),
            Some(crate::cargo::workspace_root().as_path())
        );
        let custom = command(&InstallArgs {
            root: Some(PathBuf::from("/opt/auditrail")),
            debug: true,
        });
        assert_eq!(
            args(&custom),
            [
                "install",
                "--path",
                "crates/cli",
                "--locked",
                "--debug",
                "--root",
                "/opt/auditrail"
            ]
        );
    }
}

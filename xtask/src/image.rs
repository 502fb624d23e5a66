//! `cargo xtask image`: builds the container image of the top-level
//! `Dockerfile` with the first container engine that works here (docker
//! with a running engine, podman, buildah), or says that none does and
//! fails. [`check_dockerfile`] is the static check `cargo xtask test`
//! runs instead where no image can be built (no hadolint offline): the
//! rules below, each a line of the Dockerfile that must or must not be.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::cargo::{run_cmd, workspace_root};

/// Options of `cargo xtask image`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImageArgs {
    /// The image's name and tag.
    #[arg(long, default_value = "ghcr.io/auditrail/auditrail:0.1.0")]
    tag: String,
}

/// The engines tried, in order, with the command that tells whether each
/// can build here.
const ENGINES: [(&str, &[&str]); 3] = [
    ("docker", &["info"]),
    ("podman", &["info"]),
    ("buildah", &["version"]),
];

pub(crate) fn run(args: &ImageArgs) -> anyhow::Result<()> {
    let root = workspace_root();
    let problems = check_dockerfile(&root)?;
    if !problems.is_empty() {
        bail!(
            "the Dockerfile breaks its rules:\n  {}",
            problems.join("\n  ")
        );
    }
    let mut tried = Vec::new();
    for (engine, probe) in ENGINES {
        match Command::new(engine).args(probe).output() {
            Ok(out) if out.status.success() => {
                let build = if engine == "buildah" { "bud" } else { "build" };
                return run_cmd(Command::new(engine).current_dir(&root).args([
                    build,
                    "-f",
                    "Dockerfile",
                    "-t",
                    &args.tag,
                    ".",
                ]));
            }
            Ok(out) => tried.push(format!(
                "{engine}: `{engine} {}` failed: {}",
                probe.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(err) => tried.push(format!("{engine}: not installed ({err})")),
        }
    }
    bail!(
        "no container engine can build here, so no image was built:\n  {}\n\
         The Dockerfile was checked statically (as `cargo xtask test` does). Build the image \
         where docker or podman runs: `docker build -t {} .`",
        tried.join("\n  "),
        args.tag
    )
}

/// The rules the Dockerfile and `.dockerignore` break (empty: none).
pub(crate) fn check_dockerfile(root: &Path) -> anyhow::Result<Vec<String>> {
    let dockerfile =
        std::fs::read_to_string(root.join("Dockerfile")).context("cannot read the Dockerfile")?;
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap_or_default();
    Ok(rules(&dockerfile, &ignore))
}

/// The Dockerfile's instructions: continuation lines joined, comments and
/// blank lines left out.
fn instructions(dockerfile: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn rules(dockerfile: &str, dockerignore: &str) -> Vec<String> {
    let mut broken = Vec::new();
    let lines = instructions(dockerfile);
    let word = |l: &str| {
        l.split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase()
    };
    let froms: Vec<&String> = lines.iter().filter(|l| word(l) == "FROM").collect();
    if froms.len() < 2 {
        broken.push("multi-stage: at least a build stage and a runtime stage".to_owned());
    }
    for from in &froms {
        let image = from.split_whitespace().nth(1).unwrap_or("");
        let name = image.rsplit('/').next().unwrap_or(image);
        let tagged = name.contains(':') || image.contains("@sha256:");
        if !tagged || name.ends_with(":latest") {
            broken.push(format!(
                "{from}: a base image with a pinned tag or digest, never latest"
            ));
        }
        if froms.len() > 1 && !from.to_ascii_uppercase().contains(" AS ") {
            broken.push(format!("{from}: every stage named (AS …)"));
        }
    }
    // The runtime stage: the instructions after the last FROM.
    let last_from = lines.iter().rposition(|l| word(l) == "FROM").unwrap_or(0);
    let runtime = &lines[last_from..];
    let user = runtime.iter().rev().find(|l| word(l) == "USER");
    match user.and_then(|l| l.split_whitespace().nth(1)) {
        Some(u) => {
            let uid = u.split(':').next().unwrap_or(u);
            if uid == "root"
                || uid.parse::<u32>().is_ok_and(|n| n == 0)
                || uid.parse::<u32>().is_err()
            {
                broken.push(format!(
                    "USER {u}: a numeric non-root UID (Kubernetes' runAsNonRoot checks it)"
                ));
            }
        }
        None => broken.push("the runtime stage sets no USER".to_owned()),
    }
    if !runtime
        .iter()
        .any(|l| word(l) == "COPY" && l.contains("--from="))
    {
        broken.push(
            "the runtime stage copies the binary from the build stage (COPY --from=)".to_owned(),
        );
    }
    if runtime.iter().any(|l| word(l) == "RUN") {
        broken.push("no RUN in the runtime stage: it has no shell".to_owned());
    }
    match runtime.iter().find(|l| word(l) == "ENTRYPOINT") {
        Some(e) if e.contains("[\"") && e.contains("/auditrail\"") => {}
        _ => broken.push(
            "ENTRYPOINT in exec form, the auditrail binary (the chart passes `run --service …`)"
                .to_owned(),
        ),
    }
    for label in [
        "title",
        "description",
        "source",
        "licenses",
        "version",
        "revision",
    ] {
        let key = format!("org.opencontainers.image.{label}=");
        if !lines.iter().any(|l| word(l) == "LABEL" && l.contains(&key)) {
            broken.push(format!("OCI label {key}…"));
        }
    }
    for l in &lines {
        if word(l) == "ADD" {
            broken.push(format!("{l}: COPY, not ADD"));
        }
        if word(l) == "RUN" && l.contains("cargo build") && !l.contains("--locked") {
            broken.push(format!(
                "{l}: cargo build --locked (the committed Cargo.lock)"
            ));
        }
        if word(l) == "RUN"
            && l.contains("apt-get install")
            && !l.contains("--no-install-recommends")
        {
            broken.push(format!("{l}: apt-get install --no-install-recommends"));
        }
    }
    let ignored: Vec<&str> = dockerignore.lines().map(str::trim).collect();
    for needed in [".git", "target"] {
        if !ignored.contains(&needed) {
            broken.push(format!(
                ".dockerignore: {needed} stays out of the build context"
            ));
        }
    }
    broken
}

#[cfg(test)]
mod tests {
    use super::rules;

    const GOOD: &str = "ARG V=1\nFROM rust:1.95 AS build\nRUN cargo build --locked \\\n  --release\n\
        FROM gcr.io/distroless/cc-debian12:nonroot AS runtime\n\
        LABEL org.opencontainers.image.title=a org.opencontainers.image.description=b \\\n  \
        org.opencontainers.image.source=c org.opencontainers.image.licenses=d \\\n  \
        org.opencontainers.image.version=e org.opencontainers.image.revision=f\n\
        COPY --from=build /out/auditrail /usr/local/bin/auditrail\nUSER 65532:65532\n\
        ENTRYPOINT [\"/usr/local/bin/auditrail\"]\n";
    const IGNORE: &str = ".git\ntarget\n";

    #[test]
    fn the_repository_dockerfile_keeps_the_rules() {
        let root = crate::cargo::workspace_root();
        let broken = super::check_dockerfile(&root).expect("readable");
        assert!(broken.is_empty(), "{broken:?}");
    }

    #[test]
    fn a_good_dockerfile_passes() {
        assert_eq!(rules(GOOD, IGNORE), Vec::<String>::new());
    }

    #[test]
    fn each_broken_rule_is_found() {
        for (bad, rule) in [
            (GOOD.replace("USER 65532:65532", "USER root"), "USER root"),
            (GOOD.replace("USER 65532:65532\n", ""), "no USER"),
            (GOOD.replace("rust:1.95", "rust:latest"), "never latest"),
            (GOOD.replace("rust:1.95", "rust"), "never latest"),
            (GOOD.replace(" --locked", ""), "--locked"),
            (
                GOOD.replace("org.opencontainers.image.licenses=d", ""),
                "licenses",
            ),
            (GOOD.replace("COPY --from=build", "COPY"), "COPY --from="),
            (
                GOOD.replace(
                    "ENTRYPOINT [\"/usr/local/bin/auditrail\"]",
                    "ENTRYPOINT /usr/local/bin/auditrail",
                ),
                "exec form",
            ),
            (format!("{GOOD}RUN rm -rf /tmp\n"), "no RUN"),
            (
                GOOD.replace(
                    "FROM gcr.io/distroless/cc-debian12:nonroot AS runtime\n",
                    "",
                )
                .replace("COPY --from=build", "COPY --from=x"),
                "multi-stage",
            ),
        ] {
            let broken = rules(&bad, IGNORE);
            assert!(
                broken.iter().any(|b| b.contains(rule)),
                "{rule}: {broken:?}"
            );
        }
        assert!(rules(GOOD, ".git\n").iter().any(|b| b.contains("target")));
    }
}

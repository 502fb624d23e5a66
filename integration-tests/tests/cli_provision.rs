//! The provisioner commands of the `auditrail` binary against a running
//! `auditrail up`, over real gRPC: `policy generate|validate|evaluate` and
//! `setup render|apply`, their output formats and exit statuses. The
//! server gets a kubeconfig path that does not exist, so `setup apply` can
//! never reach a real cluster from a developer's machine.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use auditrail_integration_tests::{Server, binary, run_to_end};

fn start(dir: &Path) -> Server {
    let log = dir.join("kube-audit.log");
    std::fs::write(&log, "").unwrap();
    Server::start(
        &binary("auditrail").unwrap(),
        &[
            "up",
            "--data-dir",
            dir.join("data").to_str().unwrap(),
            "--log-path",
            log.to_str().unwrap(),
        ],
        &[("KUBECONFIG", dir.join("no-kubeconfig").to_str().unwrap())],
    )
    .unwrap()
}

fn auditrail(server: &Server, args: &[&str]) -> (bool, String, String) {
    let url = server.url();
    let mut command = Command::new(binary("auditrail").unwrap());
    command.args(args).args(["--server", &url]);
    let (status, out, err) = run_to_end(&mut command).unwrap();
    (status.success(), out, err)
}

fn golden_policy(profile: &str) -> String {
    // Cargo's run-time value first, as the other tests do: a binary built
    // by another checkout sharing the target directory names that one.
    let path = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../crates/policy-gen/tests/golden")
        .join(format!("{profile}.yaml"));
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_generate() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());

    for profile in ["network-policy", "calico", "extended"] {
        let (ok, out, err) = auditrail(&server, &["policy", "generate", "--profile", profile]);
        assert!(ok, "{err}");
        assert_eq!(out, golden_policy(profile), "{profile}");
    }
    let (ok, out, err) = auditrail(
        &server,
        &[
            "policy",
            "generate",
            "--api-version",
            "v1beta1",
            "-o",
            "json",
        ],
    );
    assert!(ok, "{err}");
    let generated: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(generated["policy"]["apiVersion"], "audit.k8s.io/v1beta1");
    assert!(
        generated["warnings"][0]
            .as_str()
            .unwrap()
            .contains("removed in Kubernetes 1.24")
    );
    let (ok, _, err) = auditrail(
        &server,
        &["policy", "generate", "--extra-resource", "Apps/deployments"],
    );
    assert!(!ok);
    assert!(err.contains("extra_resources[0]"), "{err}");
    server.terminate().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_validate_and_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let extended = dir.path().join("extended.yaml");
    std::fs::write(&extended, golden_policy("extended")).unwrap();
    let extended = extended.to_str().unwrap();
    let (ok, out, err) = auditrail(&server, &["policy", "validate", extended]);
    assert!(ok, "{err}");
    assert!(
        out.ends_with("extended.yaml: valid, 0 finding(s)\n"),
        "{out}"
    );

    let evaluate = |args: &[&str]| {
        let mut all = vec!["policy", "evaluate", extended];
        all.extend(args);
        all.extend(["-o", "json"]);
        let (ok, out, err) = auditrail(&server, &all);
        assert!(ok, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    assert_eq!(
        evaluate(&[
            "--verb",
            "delete",
            "--resource",
            "pods",
            "-n",
            "prod",
            "--user",
            "alice"
        ]),
        serde_json::json!({"level": "RequestResponse", "omitStages": ["RequestReceived"], "rule": 4})
    );
    assert_eq!(
        evaluate(&["--verb", "get", "--resource", "secrets", "-n", "prod"]),
        serde_json::json!({"level": "Metadata", "omitStages": ["RequestReceived"], "rule": 5})
    );
    assert_eq!(
        evaluate(&["--verb", "get", "--path", "/healthz"]),
        serde_json::json!({"level": "None", "omitStages": ["RequestReceived"], "rule": 2})
    );
    let (ok, out, _) = auditrail(
        &server,
        &[
            "policy",
            "evaluate",
            extended,
            "--verb",
            "list",
            "--resource",
            "deployments",
            "--api-group",
            "apps",
        ],
    );
    assert!(ok);
    assert!(
        out.starts_with(
            "level: Request\nomit stages: RequestReceived\nrule: 6\n  level: Request\n"
        ),
        "{out}"
    );

    // Errors fail the command; lint warnings are printed and do not.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n",
    )
    .unwrap();
    let (ok, out, err) = auditrail(&server, &["policy", "validate", broken.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        out.starts_with("error: rules[0].level: Unsupported value: \"Loud\""),
        "{out}"
    );
    assert!(
        err.contains("is not a valid audit policy (1 error(s))"),
        "{err}"
    );
    let noisy = dir.path().join("noisy.yaml");
    std::fs::write(
        &noisy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n",
    )
    .unwrap();
    let (ok, out, err) = auditrail(&server, &["policy", "validate", noisy.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("warning[request-received-not-omitted] rule 0: "),
        "{out}"
    );
    assert!(out.contains("warning[secrets-logged] rule 0: "), "{out}");

    server.terminate().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_commands() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());

    let (ok, out, err) = auditrail(
        &server,
        &["setup", "render", "--platform", "kops", "-o", "json"],
    );
    assert!(ok, "{err}");
    let rendered: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = rendered["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "audit-policy.yaml",
            "kops-cluster-patch.yaml",
            "audit-policy-configmap.yaml"
        ]
    );

    // The secret key is written to a private file, never printed.
    let out_dir = dir.path().join("eks");
    let url = server.url();
    let mut command = Command::new(binary("auditrail").unwrap());
    command
        .args([
            "setup",
            "render",
            "--platform",
            "eks",
            "--eks-cluster",
            "prod",
            "--eks-region",
            "us-west-2",
        ])
        .args([
            "--aws-access-key-id",
            "AKID",
            "--out-dir",
            out_dir.to_str().unwrap(),
            "--server",
            &url,
        ])
        .env("AWS_SECRET_ACCESS_KEY", "very-secret");
    let (status, out, err) = run_to_end(&mut command).unwrap();
    assert!(status.success(), "{err}");
    for leaked in ["very-secret", "dmVyeS1zZWNyZXQ"] {
        assert!(!out.contains(leaked) && !err.contains(leaked), "{out}{err}");
    }
    assert!(
        out.contains("# (sensitive: not printed; written to the output directory)"),
        "{out}"
    );
    let secret = out_dir.join("secret.yaml");
    assert!(
        std::fs::read_to_string(&secret)
            .unwrap()
            .contains("aws-key: dmVyeS1zZWNyZXQ=")
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&secret).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    let (ok, _, err) = auditrail(&server, &["setup", "render", "--platform", "openshift"]);
    assert!(!ok);
    assert!(err.contains("OpenShift is not supported: "), "{err}");

    // No cluster configured for the server: a clear refusal, nothing applied.
    let (ok, _, err) = auditrail(
        &server,
        &["setup", "apply", "--platform", "onprem", "--dry-run"],
    );
    assert!(!ok);
    assert!(
        err.contains("ApplySetup failed") && err.contains("no Kubernetes configuration"),
        "{err}"
    );

    server.terminate().unwrap();
}

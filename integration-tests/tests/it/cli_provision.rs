//! The provisioner commands of the `auditrail` binary: `policy
//! generate|validate|evaluate` and `setup render|apply`, their output
//! formats and exit statuses, against a running `auditrail up` over real
//! gRPC (`--server`), and without any server, where they must answer the
//! same. The server gets a kubeconfig path that does not exist, so `setup
//! apply` can never reach a real cluster from a developer's machine; the
//! local `setup apply` is pointed at a mock Kubernetes API in the test
//! through a kubeconfig file.

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

/// The command without a server: no `--server`, no `AUDITRAIL_SERVER`.
fn local_command(args: &[&str]) -> Command {
    let mut command = Command::new(binary("auditrail").unwrap());
    command.args(args).env_remove("AUDITRAIL_SERVER");
    command
}

fn local(args: &[&str]) -> (bool, String, String) {
    let (status, out, err) = run_to_end(&mut local_command(args)).unwrap();
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
    // The flag the user typed, not the request field the server checked.
    assert!(
        err.starts_with(
            "error: GeneratePolicy failed: --extra-resource: extra resource \"Apps/deployments\": "
        ) && err.ends_with(" (INVALID_ARGUMENT)\n"),
        "{err}"
    );
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

/// No server is started here: every command works in the CLI's own process.
#[test]
fn policy_and_render_need_no_server() {
    let dir = tempfile::tempdir().unwrap();
    for profile in ["network-policy", "calico", "extended"] {
        let (ok, out, err) = local(&["policy", "generate", "--profile", profile]);
        assert!(ok, "{err}");
        assert_eq!(out, golden_policy(profile), "{profile}");
    }
    let extended = dir.path().join("extended.yaml");
    std::fs::write(&extended, golden_policy("extended")).unwrap();
    let extended = extended.to_str().unwrap();
    let (ok, out, err) = local(&["policy", "validate", extended]);
    assert!(ok, "{err}");
    assert!(
        out.ends_with("extended.yaml: valid, 0 finding(s)\n"),
        "{out}"
    );
    let (ok, out, err) = local(&[
        "policy",
        "evaluate",
        extended,
        "--verb",
        "delete",
        "--resource",
        "pods",
        "-n",
        "prod",
        "-o",
        "json",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::json!({"level": "RequestResponse", "omitStages": ["RequestReceived"], "rule": 4})
    );

    // The EKS secret key stays in this process and lands in a private file.
    let out_dir = dir.path().join("eks");
    let mut command = local_command(&[
        "setup",
        "render",
        "--platform",
        "eks",
        "--eks-cluster",
        "prod",
        "--eks-region",
        "us-west-2",
        "--aws-access-key-id",
        "AKID",
        "--out-dir",
        out_dir.to_str().unwrap(),
    ]);
    command.env("AWS_SECRET_ACCESS_KEY", "very-secret");
    let (status, out, err) = run_to_end(&mut command).unwrap();
    assert!(status.success(), "{err}");
    assert!(!out.contains("very-secret") && !err.contains("very-secret"));
    let secret = out_dir.join("secret.yaml");
    assert!(
        std::fs::read_to_string(&secret)
            .unwrap()
            .contains("aws-key: dmVyeS1zZWNyZXQ=")
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&secret).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // Refusals are the provisioner's, in the same words.
    let (ok, out, err) = local(&["setup", "render", "--platform", "openshift"]);
    assert!(!ok && out.is_empty());
    assert!(
        err.starts_with("error: RenderSetup failed: OpenShift is not supported: ")
            && err.ends_with(" (FAILED_PRECONDITION)\n"),
        "{err}"
    );
}

/// The same commands, once through `auditrail up` and once without a
/// server: standard output, standard error and exit status are identical,
/// refusals and written files included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::too_many_lines,
    reason = "one list of cases against one server"
)]
async fn local_and_server_answers_are_identical() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    let file = |name: &str, text: &str| {
        let path = policies.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let extended = file("extended.yaml", &golden_policy("extended"));
    let broken = file(
        "broken.yaml",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n",
    );
    let noisy = file(
        "noisy.yaml",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n",
    );
    let out_dir = dir.path().join("out");
    let out_dir = out_dir.to_str().unwrap();
    let mut cases: Vec<Vec<&str>> = Vec::new();
    for profile in ["network-policy", "calico", "extended"] {
        for output in ["text", "json", "yaml"] {
            cases.push(vec![
                "policy",
                "generate",
                "--profile",
                profile,
                "-o",
                output,
            ]);
        }
    }
    cases.extend([
        vec![
            "policy",
            "generate",
            "--api-version",
            "v1beta1",
            "--extra-resource",
            "apps/deployments",
        ],
        vec!["policy", "generate", "--extra-resource", "Apps/deployments"],
        vec!["policy", "validate", &extended],
        vec!["policy", "validate", &broken],
        vec!["policy", "validate", &broken, "-o", "json"],
        vec!["policy", "validate", &noisy, "-o", "yaml"],
        vec![
            "policy",
            "evaluate",
            &extended,
            "--verb",
            "list",
            "--resource",
            "deployments",
            "--api-group",
            "apps",
        ],
        vec![
            "policy", "evaluate", &extended, "--verb", "get", "--path", "/healthz", "-o", "json",
        ],
        vec![
            "policy", "evaluate", &broken, "--verb", "get", "--path", "/healthz",
        ],
        vec![
            "policy", "evaluate", &extended, "--verb", "", "--path", "/healthz",
        ],
        vec!["setup", "render", "--platform", "openshift"],
        vec![
            "setup",
            "render",
            "--platform",
            "eks",
            "--eks-cluster",
            "prod!",
            "--eks-region",
            "us-west-2",
        ],
        vec![
            "setup",
            "render",
            "--platform",
            "onprem",
            "--log-path",
            "relative.log",
        ],
        vec![
            "setup",
            "render",
            "--platform",
            "eks",
            "--eks-cluster",
            "prod",
            "--eks-region",
            "us-west-2",
            "--aws-access-key-id",
            "AKID",
            "--out-dir",
            out_dir,
        ],
    ]);
    for platform in ["onprem", "kops", "rke"] {
        for output in ["text", "json", "yaml"] {
            cases.push(vec![
                "setup",
                "render",
                "--platform",
                platform,
                "--extra-resource",
                "apps/deployments",
                "-o",
                output,
            ]);
        }
    }
    let run = |args: &[&str], server: Option<&Server>| {
        let mut command = local_command(args);
        if let Some(server) = server {
            command.args(["--server", &server.url()]);
        }
        command.env("AWS_SECRET_ACCESS_KEY", "very-secret");
        let _ = std::fs::remove_dir_all(out_dir);
        let (status, out, err) = run_to_end(&mut command).unwrap();
        let written: Vec<(String, String)> = std::fs::read_dir(out_dir)
            .map(|entries| {
                let mut files: Vec<_> = entries
                    .map(|e| {
                        let path = e.unwrap().path();
                        let name = path.file_name().unwrap().to_string_lossy().into_owned();
                        (name, std::fs::read_to_string(&path).unwrap())
                    })
                    .collect();
                files.sort();
                files
            })
            .unwrap_or_default();
        (status.code(), out, err, written)
    };
    let mut refusals = 0;
    for args in &cases {
        let remote = run(args, Some(&server));
        let local = run(args, None);
        assert_eq!(local, remote, "auditrail {}", args.join(" "));
        assert!(!local.1.is_empty() || !local.2.is_empty(), "{args:?}");
        if local.0 != Some(0) {
            refusals += 1;
            assert!(local.2.starts_with("error: "), "{}", local.2);
        }
    }
    // The list covers refusals of every kind, not only successes.
    assert_eq!(refusals, 8);
    server.terminate().unwrap();
}

/// Refusals name the flag the user typed, never the request field the
/// provisioner checks.
#[test]
fn refusals_name_flags_not_request_fields() {
    for (args, expected) in [
        (
            vec![
                "setup",
                "render",
                "--platform",
                "eks",
                "--eks-cluster",
                "prod!",
                "--eks-region",
                "us-west-2",
            ],
            "error: RenderSetup failed: --eks-cluster: \"prod!\" is not an EKS cluster name (letters, digits, '-' and '_', starting with a letter or digit, at most 100) (INVALID_ARGUMENT)\n",
        ),
        (
            vec![
                "setup",
                "render",
                "--platform",
                "eks",
                "--eks-cluster",
                "prod",
                "--eks-region",
                "us-west-2",
                "--eks-fetch-interval",
                "0",
            ],
            "error: RenderSetup failed: --eks-fetch-interval: must be positive (INVALID_ARGUMENT)\n",
        ),
        (
            vec![
                "setup",
                "render",
                "--platform",
                "kops",
                "--policy-path",
                "audit.yaml",
            ],
            "error: RenderSetup failed: --policy-path: \"audit.yaml\" must be an absolute path (INVALID_ARGUMENT)\n",
        ),
        (
            vec!["policy", "generate", "--extra-resource", "apps/"],
            "error: GeneratePolicy failed: --extra-resource: extra resource \"apps/\": the resource name is empty (INVALID_ARGUMENT)\n",
        ),
        (
            vec![
                "policy",
                "evaluate",
                "/dev/null",
                "--verb",
                "get",
                "--path",
                "/x",
            ],
            "error: EvaluatePolicy failed: the policy file is required (INVALID_ARGUMENT)\n",
        ),
    ] {
        let (ok, out, err) = local(&args);
        assert!(!ok && out.is_empty(), "{args:?}");
        assert_eq!(err, expected, "{args:?}");
    }
}

/// A mock Kubernetes API on a loopback port: records every request and
/// answers like the API server for objects that do not exist yet (GET 404
/// with Status details, server-side apply PATCH 201 with the object).
mod mock_kubernetes_api {
    use std::sync::{Arc, Mutex, PoisonError};

    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::http::{Method, StatusCode, header};
    use axum::response::Response;

    /// One request: method, path and query, content type.
    pub(crate) type Recorded = (String, String, Option<String>);

    #[derive(Clone, Default)]
    pub(crate) struct MockKubernetesApi {
        requests: Arc<Mutex<Vec<Recorded>>>,
    }

    impl MockKubernetesApi {
        /// Serves on a free loopback port; returns its `http://` URL.
        pub(crate) async fn serve(&self) -> String {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let app = axum::Router::new()
                .fallback(handle)
                .with_state(self.clone());
            tokio::spawn(async move { axum::serve(listener, app).await });
            url
        }

        pub(crate) fn take_requests(&self) -> Vec<Recorded> {
            std::mem::take(&mut *self.requests.lock().unwrap_or_else(PoisonError::into_inner))
        }
    }

    fn json(code: StatusCode, body: &serde_json::Value) -> Response {
        Response::builder()
            .status(code)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    }

    async fn handle(State(mock): State<MockKubernetesApi>, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        let uri = parts
            .uri
            .path_and_query()
            .map_or_else(String::new, ToString::to_string);
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        mock.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((parts.method.to_string(), uri, content_type));
        let name = parts
            .uri
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        match parts.method {
            Method::GET => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("\"{name}\" not found"), "reason": "NotFound",
                    "details": {"name": name}, "code": 404,
                }),
            ),
            Method::PATCH => {
                let Ok(mut object) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                    return json(
                        StatusCode::BAD_REQUEST,
                        &serde_json::json!({"kind": "Status", "code": 400}),
                    );
                };
                object["metadata"]["resourceVersion"] = "1".into();
                json(StatusCode::CREATED, &object)
            }
            _ => json(
                StatusCode::METHOD_NOT_ALLOWED,
                &serde_json::json!({"kind": "Status", "code": 405}),
            ),
        }
    }
}

/// A kubeconfig with one context per `(name, server URL)` of `servers`
/// (its cluster of the same name), `current` its current context.
fn kubeconfig(dir: &Path, current: &str, servers: &[(&str, &str)]) -> PathBuf {
    use std::fmt::Write as _;
    let mut clusters = String::new();
    let mut contexts = String::new();
    for (name, server) in servers {
        let _ = write!(
            clusters,
            "- name: {name}\n  cluster:\n    server: {server}\n"
        );
        let _ = write!(
            contexts,
            "- name: {name}\n  context:\n    cluster: {name}\n    user: dev\n"
        );
    }
    let path = dir.join(format!("kubeconfig-{current}"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n{clusters}contexts:\n{contexts}current-context: {current}\nusers:\n- name: dev\n  user:\n    token: dev-token\n"
        ),
    )
    .unwrap();
    path
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_apply_without_a_server_uses_the_kubeconfig() {
    use mock_kubernetes_api::MockKubernetesApi;
    let dir = tempfile::tempdir().unwrap();
    let mock = MockKubernetesApi::default();
    let mock_url = mock.serve().await;
    let nowhere = format!("http://127.0.0.1:{}", closed_port());
    let expected_requests = vec![
        (
            "GET".to_owned(),
            "/api/v1/namespaces/audit/configmaps/auditrail-audit-policy".to_owned(),
            None,
        ),
        (
            "PATCH".to_owned(),
            "/api/v1/namespaces/audit/configmaps/auditrail-audit-policy?&dryRun=All&force=true&fieldManager=auditrail".to_owned(),
            Some("application/apply-patch+yaml".to_owned()),
        ),
    ];
    let apply = |kubeconfig: &Path, extra: &[&str]| {
        let mut args = vec![
            "setup",
            "apply",
            "--platform",
            "onprem",
            "--dry-run",
            "-n",
            "audit",
        ];
        args.extend(extra);
        let mut command = local_command(&args);
        command.env("KUBECONFIG", kubeconfig);
        let (status, out, err) = run_to_end(&mut command).unwrap();
        (status.success(), out, err)
    };

    // The current context.
    let current = kubeconfig(
        dir.path(),
        "mock",
        &[("mock", &mock_url), ("elsewhere", &nowhere)],
    );
    let (ok, out, err) = apply(&current, &[]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "ConfigMap created audit/auditrail-audit-policy (dry run)\nnot applied (not Kubernetes objects; see `auditrail setup render`): audit-policy.yaml, kube-apiserver-flags.txt, kube-apiserver-patch.yaml\n"
    );
    assert_eq!(mock.take_requests(), expected_requests);

    // Another context, named as with kubectl.
    let other = kubeconfig(
        dir.path(),
        "elsewhere",
        &[("mock", &mock_url), ("elsewhere", &nowhere)],
    );
    let (ok, _, err) = apply(&other, &["--context", "mock"]);
    assert!(ok, "{err}");
    assert_eq!(mock.take_requests(), expected_requests);
    // Its current context goes nowhere: the failure says so.
    let (ok, _, err) = apply(&other, &[]);
    assert!(!ok);
    assert!(
        err.starts_with("error: ApplySetup failed: cannot reach the Kubernetes API: ")
            && err.ends_with(" (UNAVAILABLE)\n"),
        "{err}"
    );
    let (ok, _, err) = apply(&other, &["--context", "missing"]);
    assert!(!ok);
    assert!(
        err.starts_with(
            "error: ApplySetup failed: no Kubernetes configuration: context \"missing\": "
        ) && err.ends_with(" (FAILED_PRECONDITION)\n"),
        "{err}"
    );
    assert!(mock.take_requests().is_empty());

    // Through a server, the server's identity is used, never the client's
    // kubeconfig (this server has none).
    let server = start(dir.path());
    let mut command = local_command(&["setup", "apply", "--platform", "onprem", "--dry-run"]);
    command
        .env("KUBECONFIG", &current)
        .args(["--server", &server.url()]);
    let (status, _, err) = run_to_end(&mut command).unwrap();
    assert!(!status.success());
    assert!(
        err.starts_with("error: ApplySetup failed: no Kubernetes configuration: ")
            && err.ends_with(" (FAILED_PRECONDITION)\n"),
        "{err}"
    );
    assert!(mock.take_requests().is_empty());
    let (ok, _, err) = apply(&current, &["--context", "mock", "--server", &server.url()]);
    assert!(!ok);
    assert!(
        err.contains("applies with the server's own identity"),
        "{err}"
    );
    server.terminate().unwrap();
}

/// An https cluster: the TLS client is built (one process-wide crypto
/// provider is installed at start; without it rustls panics, exit 101) and
/// the failure to connect is an ordinary error.
#[test]
fn setup_apply_to_an_https_cluster_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let https = format!("https://127.0.0.1:{}", closed_port());
    let config = kubeconfig(dir.path(), "tls", &[("tls", &https)]);
    let mut command = local_command(&["setup", "apply", "--platform", "onprem", "--dry-run"]);
    command.env("KUBECONFIG", &config);
    let (status, out, err) = run_to_end(&mut command).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(out.is_empty());
    assert!(
        err.starts_with("error: ApplySetup failed: cannot reach the Kubernetes API: ")
            && err.ends_with(" (UNAVAILABLE)\n"),
        "{err}"
    );
}

/// A server applies with its own kubeconfig: to an https cluster its kube
/// client goes through rustls, which must answer an error for that call
/// (the cluster is unreachable), never panic the handler and reset the
/// stream. Checked on `auditrail up`, whose binary links both of rustls'
/// providers (kube's ring, the AWS SDK's aws-lc-rs), and on the standalone
/// provisioner.
#[test]
fn a_server_reaches_an_https_cluster_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let https = format!("https://127.0.0.1:{}", closed_port());
    let config = kubeconfig(dir.path(), "tls", &[("tls", &https)]);
    let log = dir.path().join("kube-audit.log");
    std::fs::write(&log, "").unwrap();
    let env = [("KUBECONFIG", config.to_str().unwrap())];
    let up = Server::start(
        &binary("auditrail").unwrap(),
        &[
            "up",
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "--log-path",
            log.to_str().unwrap(),
        ],
        &env,
    )
    .unwrap();
    let provisioner = Server::start(
        &binary("auditrail").unwrap(),
        &["run", "--service", "provisioner", "--no-access-log"],
        &env,
    )
    .unwrap();
    for server in [up, provisioner] {
        check_https_apply(server);
    }
}

fn check_https_apply(server: Server) {
    let (ok, out, err) = auditrail(
        &server,
        &["setup", "apply", "--platform", "onprem", "--dry-run"],
    );
    assert!(!ok);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with("error: ApplySetup failed: cannot reach the Kubernetes API: ")
            && err.ends_with(" (UNAVAILABLE)\n"),
        "{err}"
    );
    let logs = server.logs().join("\n");
    assert!(!logs.contains("panicked"), "{logs}");
    server.terminate().unwrap();
}

//! Applying a rendered set-up against a mock Kubernetes API: a tower service
//! standing in for the API server, which keeps the objects it is given and
//! records every request, so the tests check the exact requests made
//! (method, path, query with dry run, force and field manager, patch type).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use auditrail_kube_apply::{Action, AppliedObject, ApplyError, Manifest, apply};
use auditrail_setup::{ArtifactKind, AwsCredentials, EksOptions, Platform, SetupOptions, render};
use http_body_util::BodyExt as _;
use kube::client::Body;
use serde_json::{Value, json};

/// One request as the mock API server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Recorded {
    method: String,
    uri: String,
    content_type: Option<String>,
}

#[derive(Debug, Default)]
struct MockState {
    /// Stored objects by their URL path.
    objects: BTreeMap<String, Value>,
    requests: Vec<Recorded>,
    /// Whether `operator.tigera.io` is served (the Tigera operator's CRDs).
    tigera_operator_installed: bool,
    /// Whether writes are refused with 403, as RBAC would.
    writes_forbidden: bool,
    resource_version: u64,
}

/// A mock Kubernetes API server: GET and server-side-apply PATCH of single
/// objects, with dry run, merging like an apply that only adds or changes
/// fields.
#[derive(Debug, Clone, Default)]
struct MockKubernetesApi {
    state: Arc<Mutex<MockState>>,
}

impl MockKubernetesApi {
    fn new() -> Self {
        let mock = Self::default();
        mock.with_state(|s| s.tigera_operator_installed = true);
        mock
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut MockState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn client(&self) -> kube::Client {
        let mock = self.clone();
        let service = tower::service_fn(move |request: http::Request<Body>| {
            let mock = mock.clone();
            async move { Ok::<_, Infallible>(mock.handle(request).await) }
        });
        kube::Client::new(service, "default")
    }

    fn take_requests(&self) -> Vec<(String, String, Option<String>)> {
        self.with_state(|s| std::mem::take(&mut s.requests))
            .into_iter()
            .map(|r| (r.method, r.uri, r.content_type))
            .collect()
    }

    fn object(&self, path: &str) -> Option<Value> {
        self.with_state(|s| s.objects.get(path).cloned())
    }

    async fn handle(&self, request: http::Request<Body>) -> http::Response<Body> {
        let (parts, body) = request.into_parts();
        let bytes = body
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default();
        let path = parts.uri.path().to_owned();
        let query = parts.uri.query().unwrap_or_default().to_owned();
        self.with_state(|s| {
            s.requests.push(Recorded {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                content_type: parts
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            });
            if path.starts_with("/apis/operator.tigera.io/") && !s.tigera_operator_installed {
                return response(404, "text/plain", b"404 page not found".to_vec());
            }
            let (plural, name) = plural_and_name(&path);
            match parts.method {
                http::Method::GET => match s.objects.get(&path) {
                    Some(object) => json_response(200, object),
                    None => json_response(
                        404,
                        &status(404, "NotFound", &format!("{plural} \"{name}\" not found"), &plural, &name),
                    ),
                },
                http::Method::PATCH if s.writes_forbidden => json_response(
                    403,
                    &status(
                        403,
                        "Forbidden",
                        &format!("{plural} \"{name}\" is forbidden: User \"dev\" cannot patch resource \"{plural}\""),
                        &plural,
                        &name,
                    ),
                ),
                http::Method::PATCH => {
                    let Ok(applied) = serde_json::from_slice::<Value>(&bytes) else {
                        return json_response(400, &status(400, "BadRequest", "not JSON", &plural, &name));
                    };
                    let dry_run = query.split('&').any(|p| p == "dryRun=All");
                    let existing = s.objects.get(&path).cloned();
                    let mut merged = existing.clone().unwrap_or_else(|| json!({}));
                    merge(&mut merged, &applied);
                    let changed = existing.as_ref().is_none_or(|e| without_versions(e) != without_versions(&merged));
                    let version = match existing.as_ref().and_then(|e| e["metadata"]["resourceVersion"].as_str()) {
                        Some(v) if !changed || dry_run => v.to_owned(),
                        _ => {
                            s.resource_version += 1;
                            s.resource_version.to_string()
                        }
                    };
                    merged["metadata"]["resourceVersion"] = json!(version);
                    merged["metadata"]["managedFields"] = json!([{"manager": "auditrail", "operation": "Apply"}]);
                    if !dry_run {
                        s.objects.insert(path.clone(), merged.clone());
                    }
                    json_response(if existing.is_some() { 200 } else { 201 }, &merged)
                }
                _ => json_response(405, &status(405, "MethodNotAllowed", "not in the mock", &plural, &name)),
            }
        })
    }
}

fn plural_and_name(path: &str) -> (String, String) {
    let mut parts = path.rsplit('/');
    let name = parts.next().unwrap_or_default().to_owned();
    let plural = parts.next().unwrap_or_default().to_owned();
    (plural, name)
}

fn status(code: u16, reason: &str, message: &str, plural: &str, name: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
        "details": {"name": name, "kind": plural},
    })
}

fn without_versions(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("resourceVersion");
        metadata.remove("managedFields");
    }
    object
}

fn merge(into: &mut Value, patch: &Value) {
    match (into, patch) {
        (Value::Object(into), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(into.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (into, patch) => *into = patch.clone(),
    }
}

fn response(code: u16, content_type: &str, body: Vec<u8>) -> http::Response<Body> {
    let mut response = http::Response::new(Body::from(body));
    *response.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = http::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    response
}

fn json_response(code: u16, body: &Value) -> http::Response<Body> {
    response(code, "application/json", body.to_string().into_bytes())
}

/// The Kubernetes manifests of a rendered set-up, as `setup apply` sends them.
fn manifests(platform: Platform, options: &SetupOptions) -> Vec<Manifest> {
    render(platform, options)
        .expect("rendered")
        .artifacts
        .into_iter()
        .filter(|a| a.kind == ArtifactKind::KubernetesManifest)
        .map(|a| Manifest {
            artifact: a.name,
            content: a.content,
        })
        .collect()
}

fn eks_options() -> SetupOptions {
    SetupOptions {
        eks: Some(EksOptions {
            cluster_name: "prod".to_owned(),
            region: "us-west-2".to_owned(),
            credentials: Some(AwsCredentials {
                access_key_id: "AKID".to_owned(),
                secret_access_key: "SECRET".to_owned(),
            }),
            ..EksOptions::default()
        }),
        ..SetupOptions::default()
    }
}

const CONFIG_MAP: &str = "/api/v1/namespaces/auditrail/configmaps/auditrail-audit-policy";
const SECRET: &str = "/api/v1/namespaces/tigera-operator/secrets/tigera-eks-log-forwarder-secret";
const LOG_COLLECTOR: &str = "/apis/operator.tigera.io/v1/logcollectors/tigera-secure";
const APPLY_PATCH: &str = "application/apply-patch+yaml";

fn get(path: &str) -> (String, String, Option<String>) {
    ("GET".to_owned(), path.to_owned(), None)
}

fn apply_patch(path: &str, query: &str) -> (String, String, Option<String>) {
    (
        "PATCH".to_owned(),
        format!("{path}?{query}"),
        Some(APPLY_PATCH.to_owned()),
    )
}

fn actions(applied: &[AppliedObject]) -> Vec<(&str, Option<&str>, &str, Action)> {
    applied
        .iter()
        .map(|o| {
            (
                o.kind.as_str(),
                o.namespace.as_deref(),
                o.name.as_str(),
                o.action,
            )
        })
        .collect()
}

#[tokio::test]
async fn applies_then_reapplies_without_change() {
    let mock = MockKubernetesApi::new();
    let client = mock.client();
    let mut all = manifests(Platform::OnPrem, &SetupOptions::default());
    all.extend(manifests(Platform::Eks, &eks_options()));

    let applied = apply(&client, &all, "auditrail", false)
        .await
        .expect("applied");
    assert_eq!(
        actions(&applied),
        vec![
            (
                "ConfigMap",
                Some("auditrail"),
                "auditrail-audit-policy",
                Action::Created
            ),
            ("LogCollector", None, "tigera-secure", Action::Created),
            (
                "Secret",
                Some("tigera-operator"),
                "tigera-eks-log-forwarder-secret",
                Action::Created
            ),
        ]
    );
    assert!(applied.iter().all(|o| !o.dry_run));
    assert_eq!(applied[1].api_version, "operator.tigera.io/v1");
    let query = "&force=true&fieldManager=auditrail";
    assert_eq!(
        mock.take_requests(),
        vec![
            get(CONFIG_MAP),
            apply_patch(CONFIG_MAP, query),
            get(LOG_COLLECTOR),
            apply_patch(LOG_COLLECTOR, query),
            get(SECRET),
            apply_patch(SECRET, query),
        ]
    );
    let stored = mock.object(CONFIG_MAP).expect("stored");
    assert_eq!(stored["metadata"]["namespace"], "auditrail");
    assert!(
        stored["data"]["audit-policy.yaml"]
            .as_str()
            .is_some_and(|p| p.contains("networkpolicies"))
    );
    let collector = mock.object(LOG_COLLECTOR).expect("stored");
    assert_eq!(
        collector["spec"]["additionalSources"]["eksCloudwatchLog"]["groupName"],
        "/aws/eks/prod/cluster"
    );
    assert_eq!(
        mock.object(SECRET).expect("stored")["data"]["aws-key"],
        "U0VDUkVU" // base64 of SECRET
    );

    // Idempotent: the same objects again change nothing.
    let again = apply(&client, &all, "auditrail", false)
        .await
        .expect("applied");
    assert!(
        again.iter().all(|o| o.action == Action::Unchanged),
        "{again:?}"
    );
    assert_eq!(mock.object(CONFIG_MAP), Some(stored));
    assert_eq!(mock.take_requests().len(), 6);

    // A different policy patches the ConfigMap.
    let extended = SetupOptions {
        policy: auditrail_policy_gen::PolicyRequest::new(auditrail_policy_gen::Profile::Extended),
        ..SetupOptions::default()
    };
    let changed = apply(
        &client,
        &manifests(Platform::OnPrem, &extended),
        "auditrail",
        false,
    )
    .await
    .expect("applied");
    assert_eq!(changed[0].action, Action::Patched);
}

#[tokio::test]
async fn a_dry_run_asks_the_server_for_one_and_stores_nothing() {
    let mock = MockKubernetesApi::new();
    let client = mock.client();
    let all = manifests(Platform::Eks, &eks_options());
    let applied = apply(&client, &all, "auditrail", true)
        .await
        .expect("dry run");
    assert!(
        applied
            .iter()
            .all(|o| o.dry_run && o.action == Action::Created),
        "{applied:?}"
    );
    let query = "&dryRun=All&force=true&fieldManager=auditrail";
    assert_eq!(
        mock.take_requests(),
        vec![
            get(LOG_COLLECTOR),
            apply_patch(LOG_COLLECTOR, query),
            get(SECRET),
            apply_patch(SECRET, query),
        ]
    );
    assert_eq!(mock.object(LOG_COLLECTOR), None);
    assert_eq!(mock.object(SECRET), None);
}

#[tokio::test]
async fn a_log_collector_without_the_tigera_operator_is_a_missing_resource_type() {
    let mock = MockKubernetesApi::new();
    mock.with_state(|s| s.tigera_operator_installed = false);
    let error = apply(
        &mock.client(),
        &manifests(Platform::Eks, &eks_options()),
        "auditrail",
        false,
    )
    .await
    .expect_err("no CRD");
    assert_eq!(
        error,
        ApplyError::MissingResourceType {
            kind: "LogCollector".to_owned(),
            name: "tigera-secure".to_owned(),
            api_version: "operator.tigera.io/v1".to_owned(),
            hint: "install the Tigera operator first",
        }
    );
    // The bare 404 of the read already tells: nothing is written.
    assert_eq!(mock.take_requests(), vec![get(LOG_COLLECTOR)]);
}

#[tokio::test]
async fn rbac_refusals_are_forbidden() {
    let mock = MockKubernetesApi::new();
    mock.with_state(|s| s.writes_forbidden = true);
    let error = apply(
        &mock.client(),
        &manifests(Platform::OnPrem, &SetupOptions::default()),
        "auditrail",
        false,
    )
    .await
    .expect_err("forbidden");
    let ApplyError::Forbidden {
        kind,
        name,
        message,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(
        (kind.as_str(), name.as_str()),
        ("ConfigMap", "auditrail-audit-policy")
    );
    assert!(message.contains("cannot patch"), "{message}");
}

#[tokio::test]
async fn bad_manifests_are_refused_before_any_request() {
    let mock = MockKubernetesApi::new();
    let client = mock.client();
    let good = manifests(Platform::OnPrem, &SetupOptions::default());
    for (content, expected) in [
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
            "deployment.yaml: Deployment (apps/v1) is not applied by auditrail",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
            "deployment.yaml: a ConfigMap without metadata.name",
        ),
        ("kind: [", "deployment.yaml: not YAML"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ../../secrets/x\n",
            "deployment.yaml: metadata.name \"../../secrets/x\" is not a lowercase RFC 1123 subdomain",
        ),
        (
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n  namespace: Kube_System\n",
            "deployment.yaml: metadata.namespace \"Kube_System\" is not a lowercase RFC 1123 label",
        ),
        (
            "metadata:\n  name: x\n",
            "deployment.yaml: an object without apiVersion and kind",
        ),
    ] {
        let mut all = good.clone();
        all.push(Manifest {
            artifact: "deployment.yaml".to_owned(),
            content: content.to_owned(),
        });
        let error = apply(&client, &all, "auditrail", false)
            .await
            .expect_err(expected);
        assert!(
            error.to_string().starts_with(expected),
            "{expected}: {error}"
        );
    }
    let error = apply(&client, &good, "../kube-system", false)
        .await
        .expect_err("bad namespace");
    assert_eq!(
        error,
        ApplyError::InvalidNamespace("../kube-system".to_owned())
    );
    assert_eq!(mock.take_requests(), Vec::new(), "nothing was sent");
    // Several documents in one manifest, and empty ones, are fine.
    let both = Manifest {
        artifact: "both.yaml".to_owned(),
        content: format!(
            "---\n{}---\n{}---\n",
            good[0].content,
            good[0].content.replace("auditrail-audit-policy", "second")
        ),
    };
    let applied = apply(&client, &[both], "auditrail", false)
        .await
        .expect("applied");
    assert_eq!(applied.len(), 2);
    assert_eq!(applied[1].name, "second");
}

#[tokio::test]
async fn an_unreachable_api_server_is_unreachable() {
    let service = tower::service_fn(|_request: http::Request<Body>| async {
        Err::<http::Response<Body>, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ))
    });
    let client = kube::Client::new(service, "default");
    let error = apply(
        &client,
        &manifests(Platform::OnPrem, &SetupOptions::default()),
        "auditrail",
        false,
    )
    .await
    .expect_err("unreachable");
    assert!(
        matches!(&error, ApplyError::Unreachable(m) if m.contains("connection refused")),
        "{error:?}"
    );
}

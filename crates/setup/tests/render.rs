//! Every platform's set-up: byte for byte against the golden files, and each
//! rendered Kubernetes object read back into its typed k8s-openapi struct.
//! `UPDATE_GOLDEN=1 cargo test -p auditrail-setup` rewrites the golden files.

use std::fmt::Write as _;
use std::path::PathBuf;

use auditrail_policy::{Level, Policy, RequestAttributes, ResourceAttributes};
use auditrail_policy_gen::{PolicyRequest, Profile};
use auditrail_setup::{
    Artifact, ArtifactKind, AwsCredentials, EksOptions, Platform, Setup, SetupError, SetupOptions,
    render,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use serde::Deserialize;

/// Writes or compares the whole set-up: each artifact's header (name, media
/// type, kind, sensitivity, description), its content, then the notes.
fn golden(name: &str, setup: &Setup) {
    let mut text = String::new();
    for a in &setup.artifacts {
        let _ = write!(
            text,
            "=== {} ({}, {:?}{}) {}\n{}",
            a.name,
            a.media_type,
            a.kind,
            if a.sensitive { ", sensitive" } else { "" },
            a.description,
            a.content
        );
    }
    text.push_str("=== notes\n");
    for note in &setup.notes {
        let _ = writeln!(text, "- {note}");
    }
    let path = manifest_dir()
        .join("tests/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(text, expected, "{name} differs from its golden file");
}

fn artifact<'a>(setup: &'a Setup, name: &str) -> &'a Artifact {
    setup
        .artifacts
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", setup.artifacts))
}

fn eks_options(credentials: Option<AwsCredentials>) -> SetupOptions {
    SetupOptions {
        eks: Some(EksOptions {
            cluster_name: "prod-eu".to_owned(),
            region: "eu-west-1".to_owned(),
            credentials,
            ..EksOptions::default()
        }),
        ..SetupOptions::default()
    }
}

/// The policy ConfigMap reads back as a ConfigMap whose policy is the
/// audit-policy.yaml artifact, and validates.
fn check_policy_config_map(setup: &Setup) -> auditrail_policy::ValidatedPolicy {
    let policy_yaml = &artifact(setup, "audit-policy.yaml").content;
    let map: ConfigMap =
        serde_norway::from_str(&artifact(setup, "audit-policy-configmap.yaml").content)
            .expect("a ConfigMap");
    assert_eq!(map.metadata.name.as_deref(), Some("auditrail-audit-policy"));
    let data = map.data.expect("data");
    assert_eq!(data.get("audit-policy.yaml"), Some(policy_yaml));
    Policy::from_yaml(policy_yaml)
        .expect("loads")
        .validate()
        .expect("validates")
}

#[test]
fn onprem_renders_flags_the_pod_patch_and_the_policy() {
    let setup = render(Platform::OnPrem, &SetupOptions::default()).expect("rendered");
    golden("onprem", &setup);
    check_policy_config_map(&setup);
    let flags = &artifact(&setup, "kube-apiserver-flags.txt").content;
    for flag in [
        "--audit-policy-file=/etc/kubernetes/audit-policy.yaml",
        "--audit-log-path=/var/log/calico/audit/kube-audit.log",
        "--audit-log-maxage=30",
        "--audit-log-maxbackup=10",
        "--audit-log-maxsize=100",
    ] {
        assert!(flags.lines().any(|l| l == flag), "{flag} in {flags}");
    }
    let pod: Pod = serde_norway::from_str(&artifact(&setup, "kube-apiserver-patch.yaml").content)
        .expect("a Pod");
    let spec = pod.spec.expect("spec");
    let mounts = spec.containers[0].volume_mounts.clone().expect("mounts");
    let mounted: Vec<&str> = mounts.iter().map(|m| m.mount_path.as_str()).collect();
    assert_eq!(
        mounted,
        vec!["/etc/kubernetes/audit-policy.yaml", "/var/log/calico/audit"]
    );
    let volumes = spec.volumes.expect("volumes");
    assert_eq!(
        volumes[1].host_path.as_ref().map(|h| h.path.as_str()),
        Some("/var/log/calico/audit")
    );
    assert!(
        setup
            .notes
            .iter()
            .any(|n| n.contains("restarts kube-apiserver"))
    );
}

#[test]
fn onprem_takes_its_options() {
    let options = SetupOptions {
        policy: PolicyRequest::new(Profile::Extended),
        log_path: "/var/log/audit/api.log".to_owned(),
        max_age_days: 7,
        max_backups: 3,
        max_size_mb: 50,
        policy_path: Some("/etc/audit/policy.yaml".to_owned()),
        eks: None,
    };
    let setup = render(Platform::OnPrem, &options).expect("rendered");
    golden("onprem-options", &setup);
    let policy = check_policy_config_map(&setup);
    let delete_pod = RequestAttributes::resource(
        "delete",
        ResourceAttributes::new("", "pods").in_namespace("prod"),
    );
    assert_eq!(policy.evaluate(&delete_pod).level, Level::RequestResponse);
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KopsPatch {
    spec: KopsSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KopsSpec {
    file_assets: Vec<KopsFileAsset>,
    #[serde(rename = "kubeAPIServer")]
    kube_api_server: KopsApiServer,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KopsFileAsset {
    name: String,
    path: String,
    roles: Vec<String>,
    content: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(clippy::struct_field_names)] // kOps's own field names
struct KopsApiServer {
    audit_log_path: String,
    audit_log_max_age: u32,
    audit_log_max_backups: u32,
    audit_log_max_size: u32,
    audit_policy_file: String,
}

#[test]
fn kops_renders_the_cluster_spec_patch() {
    let setup = render(Platform::Kops, &SetupOptions::default()).expect("rendered");
    golden("kops", &setup);
    check_policy_config_map(&setup);
    let patch: KopsPatch =
        serde_norway::from_str(&artifact(&setup, "kops-cluster-patch.yaml").content)
            .expect("the kOps fields");
    let asset = &patch.spec.file_assets[0];
    assert_eq!(asset.name, "audit-policy");
    assert_eq!(asset.roles, vec!["ControlPlane"]);
    assert_eq!(asset.content, artifact(&setup, "audit-policy.yaml").content);
    let api = &patch.spec.kube_api_server;
    assert_eq!(api.audit_policy_file, asset.path);
    assert_eq!(api.audit_log_path, "/var/log/calico/audit/kube-audit.log");
    assert_eq!(
        (
            api.audit_log_max_age,
            api.audit_log_max_backups,
            api.audit_log_max_size
        ),
        (30, 10, 100)
    );
}

#[test]
fn rke_renders_the_cluster_yml_patch() {
    let setup = render(Platform::Rke, &SetupOptions::default()).expect("rendered");
    golden("rke", &setup);
    check_policy_config_map(&setup);
    let patch: serde_norway::Value =
        serde_norway::from_str(&artifact(&setup, "rke-cluster-patch.yaml").content).expect("YAML");
    let kube_api = &patch["services"]["kube-api"];
    let configuration = &kube_api["audit_log"]["configuration"];
    assert_eq!(kube_api["audit_log"]["enabled"], true);
    assert_eq!(
        configuration["path"],
        "/var/log/calico/audit/kube-audit.log"
    );
    assert_eq!(configuration["max_backup"], 10);
    let embedded = serde_norway::to_string(&configuration["policy"]).expect("YAML");
    assert_eq!(
        Policy::from_yaml(&embedded).expect("loads"),
        Policy::from_yaml(&artifact(&setup, "audit-policy.yaml").content).expect("loads")
    );
    assert_eq!(
        kube_api["extra_binds"][0],
        "/var/log/calico/audit:/var/log/calico/audit"
    );
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LogCollector {
    api_version: String,
    kind: String,
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    spec: LogCollectorSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LogCollectorSpec {
    additional_sources: AdditionalSources,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AdditionalSources {
    eks_cloudwatch_log: EksCloudwatchLog,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EksCloudwatchLog {
    region: String,
    group_name: String,
    stream_prefix: String,
    fetch_interval: u32,
}

#[test]
fn eks_renders_the_command_iam_policy_log_collector_and_secret() {
    let credentials = AwsCredentials {
        access_key_id: "AKIDEXAMPLE".to_owned(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG".to_owned(),
    };
    let setup = render(Platform::Eks, &eks_options(Some(credentials))).expect("rendered");
    golden("eks", &setup);
    let command = &artifact(&setup, "enable-eks-audit-logs.sh").content;
    assert!(command.contains("aws eks update-cluster-config"));
    assert!(command.contains("--name prod-eu"));
    let iam: serde_json::Value =
        serde_json::from_str(&artifact(&setup, "iam-policy.json").content).expect("JSON");
    assert_eq!(
        iam["Statement"][0]["Resource"][0],
        "arn:aws:logs:eu-west-1:*:log-group:/aws/eks/prod-eu/cluster"
    );
    let collector: LogCollector =
        serde_norway::from_str(&artifact(&setup, "logcollector.yaml").content)
            .expect("a LogCollector");
    assert_eq!(
        (collector.api_version.as_str(), collector.kind.as_str()),
        ("operator.tigera.io/v1", "LogCollector")
    );
    assert_eq!(collector.metadata.name.as_deref(), Some("tigera-secure"));
    let source = &collector.spec.additional_sources.eks_cloudwatch_log;
    assert_eq!(source.region, "eu-west-1");
    assert_eq!(source.group_name, "/aws/eks/prod-eu/cluster");
    assert_eq!(source.stream_prefix, "kube-apiserver-audit-");
    assert_eq!(source.fetch_interval, 60);
    let secret_artifact = artifact(&setup, "secret.yaml");
    assert!(secret_artifact.sensitive);
    assert_eq!(secret_artifact.kind, ArtifactKind::KubernetesManifest);
    let secret: Secret = serde_norway::from_str(&secret_artifact.content).expect("a Secret");
    assert_eq!(
        secret.metadata.namespace.as_deref(),
        Some("tigera-operator")
    );
    assert_eq!(
        secret.metadata.name.as_deref(),
        Some("tigera-eks-log-forwarder-secret")
    );
    let data = secret.data.expect("data");
    assert_eq!(data["aws-id"].0, b"AKIDEXAMPLE");
    assert_eq!(data["aws-key"].0, b"wJalrXUtnFEMI/K7MDENG");
    assert!(
        setup
            .artifacts
            .iter()
            .all(|a| a.sensitive || !a.content.contains("wJalrXUtnFEMI")),
        "the secret key only in the sensitive artifact"
    );
}

#[test]
fn eks_without_keys_has_no_secret_and_says_so() {
    let mut options = eks_options(None);
    if let Some(eks) = options.eks.as_mut() {
        eks.log_group = Some("/custom/group".to_owned());
        eks.stream_prefix = Some("audit-".to_owned());
        eks.fetch_interval_seconds = Some(15);
    }
    let setup = render(Platform::Eks, &options).expect("rendered");
    golden("eks-no-keys", &setup);
    assert!(setup.artifacts.iter().all(|a| !a.sensitive));
    assert!(setup.notes.iter().any(|n| n.contains("No AWS keys given")));
    let collector: LogCollector =
        serde_norway::from_str(&artifact(&setup, "logcollector.yaml").content)
            .expect("a LogCollector");
    let source = collector.spec.additional_sources.eks_cloudwatch_log;
    assert_eq!(
        (
            source.group_name.as_str(),
            source.stream_prefix.as_str(),
            source.fetch_interval
        ),
        ("/custom/group", "audit-", 15)
    );
}

#[test]
fn eks_options_are_checked() {
    let cases: Vec<(SetupOptions, &str)> = vec![
        (
            SetupOptions::default(),
            "eks: EKS needs the cluster name and region",
        ),
        (
            eks_options(None).tap(|e| e.cluster_name.clear()),
            "eks.cluster_name: is required",
        ),
        (
            eks_options(None).tap(|e| e.cluster_name = "prod; rm -rf /".to_owned()),
            "is not an EKS cluster name",
        ),
        (
            eks_options(None).tap(|e| e.region.clear()),
            "eks.region: is required",
        ),
        (
            eks_options(None).tap(|e| e.region = "EU West".to_owned()),
            "is not an AWS region",
        ),
        (
            eks_options(None).tap(|e| e.log_group = Some("group'\"".to_owned())),
            "is not a CloudWatch log group name",
        ),
        (
            eks_options(None).tap(|e| e.fetch_interval_seconds = Some(0)),
            "must be positive",
        ),
        (
            eks_options(Some(AwsCredentials {
                access_key_id: "AKID".to_owned(),
                secret_access_key: String::new(),
            })),
            "give both",
        ),
    ];
    for (options, expected) in cases {
        let error = render(Platform::Eks, &options).expect_err(expected);
        assert!(
            matches!(error, SetupError::InvalidOption { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(expected), "{expected}: {error}");
    }
}

trait Tap {
    fn tap(self, change: impl FnOnce(&mut EksOptions)) -> Self;
}

impl Tap for SetupOptions {
    fn tap(mut self, change: impl FnOnce(&mut EksOptions)) -> Self {
        if let Some(eks) = self.eks.as_mut() {
            change(eks);
        }
        self
    }
}

#[test]
fn openshift_is_refused_with_the_reason() {
    let error = render(Platform::OpenShift, &SetupOptions::default()).expect_err("refused");
    let SetupError::Unsupported { platform, reason } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*platform, "OpenShift");
    assert!(reason.contains("audit profiles"), "{reason}");
    assert!(
        error
            .to_string()
            .starts_with("OpenShift is not supported: ")
    );
}

#[test]
fn bad_paths_and_resources_are_refused() {
    for (options, expected) in [
        (
            SetupOptions {
                log_path: "kube-audit.log".to_owned(),
                ..SetupOptions::default()
            },
            "log_path: \"kube-audit.log\" must be an absolute file path below a directory",
        ),
        (
            SetupOptions {
                policy_path: Some("policy.yaml".to_owned()),
                ..SetupOptions::default()
            },
            "policy_path: \"policy.yaml\" must be an absolute path",
        ),
    ] {
        let error = render(Platform::OnPrem, &options).expect_err(expected);
        assert_eq!(error.to_string(), expected);
    }
    let options = SetupOptions {
        policy: PolicyRequest {
            extra_resources: vec![auditrail_policy_gen::GroupResource {
                group: "Bad".to_owned(),
                resource: "things".to_owned(),
            }],
            ..PolicyRequest::default()
        },
        ..SetupOptions::default()
    };
    let error = render(Platform::Kops, &options).expect_err("refused");
    assert!(matches!(error, SetupError::Policy(_)), "{error:?}");
}

/// This package's directory: cargo's value at run time, which is right even
/// when the test binary was built by another checkout sharing the target
/// directory (the compile-time value would name that checkout).
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

//! The set-up of each platform as a list of artifacts.

use std::path::Path;

use auditrail_policy::Policy;
use auditrail_policy_gen::generate;
use serde::Serialize;

use crate::error::SetupError;
use crate::objects::{POLICY_CONFIG_MAP_NAME, apiserver_pod_patch, policy_config_map, yaml};
use crate::options::{Platform, SetupOptions};

/// What an artifact is, and so what is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArtifactKind {
    /// The audit policy file, for the control-plane nodes.
    AuditPolicy,
    /// kube-apiserver flags and the static pod's mounts.
    ApiServerFlags,
    /// A patch of the cluster definition (kOps cluster spec, RKE cluster.yml).
    ClusterConfig,
    /// Kubernetes objects to apply (`auditrail setup apply`).
    KubernetesManifest,
    /// A cloud provider's command or document (the EKS command, the IAM
    /// policy).
    CloudConfig,
}

/// One rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// File name, e.g. `audit-policy.yaml`.
    pub name: String,
    /// Media type, e.g. `application/yaml`.
    pub media_type: String,
    /// The file's text.
    pub content: String,
    /// What the file is for and where it goes.
    pub description: String,
    /// What it is.
    pub kind: ArtifactKind,
    /// Whether `content` holds secrets (never print or log it).
    pub sensitive: bool,
}

/// A rendered set-up: the files in the order to use them, and what a person
/// has to know or do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// The files.
    pub artifacts: Vec<Artifact>,
    /// Steps and caveats.
    pub notes: Vec<String>,
}

/// Why OpenShift is refused, for the person who asked.
const OPENSHIFT_REASON: &str = "OpenShift configures API server auditing itself (audit profiles of its APIServer resource, not a policy file or kube-apiserver flags) and ships the logs with its own logging stack, so the set-up auditrail renders would be overwritten by the cluster operators; the product auditrail replaces does not support OpenShift either";

/// Renders the set-up of `platform`.
pub fn render(platform: Platform, options: &SetupOptions) -> Result<Setup, SetupError> {
    match platform {
        Platform::OpenShift => Err(SetupError::Unsupported {
            platform: "OpenShift",
            reason: OPENSHIFT_REASON,
        }),
        Platform::Eks => crate::eks::render(options),
        Platform::OnPrem | Platform::Kops | Platform::Rke => self_managed(platform, options),
    }
}

/// Platforms where the control plane is ours to configure: the policy file,
/// the platform's way of passing it and the log settings to kube-apiserver,
/// and the policy ConfigMap.
fn self_managed(platform: Platform, options: &SetupOptions) -> Result<Setup, SetupError> {
    let log_dir = log_directory(&options.log_path)?;
    let policy_path = match options.policy_path.as_deref().filter(|p| !p.is_empty()) {
        Some(path) if !path.starts_with('/') => {
            return Err(SetupError::invalid(
                "policy_path",
                format!("{path:?} must be an absolute path"),
            ));
        }
        Some(path) => path,
        None if platform == Platform::Kops => KOPS_POLICY_PATH,
        None => DEFAULT_POLICY_PATH,
    };
    let generated = generate(&options.policy)?;
    let policy_yaml = generated.policy.to_yaml().map_err(|e| SetupError::Encode {
        what: "the audit policy",
        message: e.to_string(),
    })?;
    let mut notes = generated.warnings.clone();
    let mut artifacts = vec![yaml_artifact(
        "audit-policy.yaml",
        policy_yaml.clone(),
        match platform {
            Platform::Rke => "The audit policy (already inside the cluster.yml patch; RKE writes it to the nodes).".to_owned(),
            Platform::Kops => format!("The audit policy (already inside the cluster spec patch; kOps writes it to {policy_path} on the control plane)."),
            _ => format!("The audit policy: copy it to {policy_path} on every control-plane node."),
        },
        ArtifactKind::AuditPolicy,
    )];
    match platform {
        Platform::Kops => {
            artifacts.push(yaml_artifact(
                "kops-cluster-patch.yaml",
                yaml(
                    "the kOps cluster spec patch",
                    &kops_patch(options, policy_path, &policy_yaml),
                )?,
                "Merge into the kOps cluster spec (kops edit cluster): the policy as a file asset on the control plane, and the audit flags of kube-apiserver.".to_owned(),
                ArtifactKind::ClusterConfig,
            ));
            notes.push("Apply with `kops update cluster --yes`, then `kops rolling-update cluster --yes`: the control-plane nodes are replaced one at a time (kOps before 1.26 names the role Master, not ControlPlane).".to_owned());
        }
        Platform::Rke => {
            artifacts.push(yaml_artifact(
                "rke-cluster-patch.yaml",
                yaml("the RKE cluster.yml patch", &rke_patch(options, log_dir, &generated.policy))?,
                "Merge into cluster.yml: kube-api's audit log with the policy, path and rotation, and the log directory bound into the container.".to_owned(),
                ArtifactKind::ClusterConfig,
            ));
            notes.push(
                "Apply with `rke up`: kube-api is restarted on every control-plane node."
                    .to_owned(),
            );
        }
        _ => {
            artifacts.push(Artifact {
                name: "kube-apiserver-flags.txt".to_owned(),
                media_type: "text/plain".to_owned(),
                content: apiserver_flags(options, policy_path),
                description: "Add these flags to the kube-apiserver command in /etc/kubernetes/manifests/kube-apiserver.yaml on every control-plane node.".to_owned(),
                kind: ArtifactKind::ApiServerFlags,
                sensitive: false,
            });
            artifacts.push(yaml_artifact(
                "kube-apiserver-patch.yaml",
                yaml(
                    "the kube-apiserver pod patch",
                    &apiserver_pod_patch(policy_path, log_dir),
                )?,
                "Merge into the static pod manifest /etc/kubernetes/manifests/kube-apiserver.yaml (volumes and volumeMounts, by name): the policy file and the log directory from the node.".to_owned(),
                ArtifactKind::ApiServerFlags,
            ));
            notes.push("The kubelet restarts kube-apiserver as soon as its manifest changes: edit one control-plane node at a time, and keep a copy of the manifest outside /etc/kubernetes/manifests.".to_owned());
        }
    }
    artifacts.push(yaml_artifact(
        "audit-policy-configmap.yaml",
        yaml("the policy ConfigMap", &policy_config_map(&policy_yaml))?,
        format!(
            "ConfigMap {POLICY_CONFIG_MAP_NAME}: the policy kept in the cluster, for `auditrail setup apply`."
        ),
        ArtifactKind::KubernetesManifest,
    ));
    notes.push(format!(
        "auditrail's ingestor reads {}; rotated files are kept {} days, {} of them, rotated at {} MB.",
        options.log_path, options.max_age_days, options.max_backups, options.max_size_mb
    ));
    Ok(Setup { artifacts, notes })
}

/// `/etc/kubernetes/audit-policy.yaml`: where kubeadm-style control planes
/// keep their configuration.
const DEFAULT_POLICY_PATH: &str = "/etc/kubernetes/audit-policy.yaml";
/// kOps mounts `/srv/kubernetes/kube-apiserver` into kube-apiserver.
const KOPS_POLICY_PATH: &str = "/srv/kubernetes/kube-apiserver/audit-policy.yaml";

/// The directory of the log file: what is mounted, since kube-apiserver
/// rotates by renaming inside it.
fn log_directory(log_path: &str) -> Result<&str, SetupError> {
    let parent = Path::new(log_path)
        .parent()
        .and_then(Path::to_str)
        .filter(|p| log_path.starts_with('/') && *p != "/" && !p.is_empty());
    parent.ok_or_else(|| {
        SetupError::invalid(
            "log_path",
            format!("{log_path:?} must be an absolute file path below a directory"),
        )
    })
}

fn yaml_artifact(name: &str, content: String, description: String, kind: ArtifactKind) -> Artifact {
    Artifact {
        name: name.to_owned(),
        media_type: "application/yaml".to_owned(),
        content,
        description,
        kind,
        sensitive: false,
    }
}

fn apiserver_flags(options: &SetupOptions, policy_path: &str) -> String {
    format!(
        "--audit-policy-file={policy_path}\n--audit-log-path={}\n--audit-log-maxage={}\n--audit-log-maxbackup={}\n--audit-log-maxsize={}\n",
        options.log_path, options.max_age_days, options.max_backups, options.max_size_mb
    )
}

/// `spec.fileAssets` and `spec.kubeAPIServer` of a kOps cluster.
#[derive(Serialize)]
struct KopsPatch<'a> {
    spec: KopsSpec<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KopsSpec<'a> {
    file_assets: Vec<KopsFileAsset<'a>>,
    #[serde(rename = "kubeAPIServer")]
    kube_api_server: KopsApiServer<'a>,
}

#[derive(Serialize)]
struct KopsFileAsset<'a> {
    name: &'a str,
    path: &'a str,
    roles: Vec<&'a str>,
    content: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::struct_field_names)] // kOps's own field names
struct KopsApiServer<'a> {
    audit_log_path: &'a str,
    audit_log_max_age: u32,
    audit_log_max_backups: u32,
    audit_log_max_size: u32,
    audit_policy_file: &'a str,
}

fn kops_patch<'a>(
    options: &'a SetupOptions,
    policy_path: &'a str,
    policy_yaml: &'a str,
) -> KopsPatch<'a> {
    KopsPatch {
        spec: KopsSpec {
            file_assets: vec![KopsFileAsset {
                name: "audit-policy",
                path: policy_path,
                roles: vec!["ControlPlane"],
                content: policy_yaml,
            }],
            kube_api_server: KopsApiServer {
                audit_log_path: &options.log_path,
                audit_log_max_age: options.max_age_days,
                audit_log_max_backups: options.max_backups,
                audit_log_max_size: options.max_size_mb,
                audit_policy_file: policy_path,
            },
        },
    }
}

/// `services.kube-api` of an RKE `cluster.yml`.
#[derive(Serialize)]
struct RkePatch<'a> {
    services: RkeServices<'a>,
}

#[derive(Serialize)]
struct RkeServices<'a> {
    #[serde(rename = "kube-api")]
    kube_api: RkeKubeApi<'a>,
}

#[derive(Serialize)]
struct RkeKubeApi<'a> {
    audit_log: RkeAuditLog<'a>,
    extra_binds: Vec<String>,
}

#[derive(Serialize)]
struct RkeAuditLog<'a> {
    enabled: bool,
    configuration: RkeAuditLogConfiguration<'a>,
}

#[derive(Serialize)]
struct RkeAuditLogConfiguration<'a> {
    max_age: u32,
    max_backup: u32,
    max_size: u32,
    path: &'a str,
    format: &'a str,
    policy: &'a Policy,
}

fn rke_patch<'a>(options: &'a SetupOptions, log_dir: &str, policy: &'a Policy) -> RkePatch<'a> {
    RkePatch {
        services: RkeServices {
            kube_api: RkeKubeApi {
                audit_log: RkeAuditLog {
                    enabled: true,
                    configuration: RkeAuditLogConfiguration {
                        max_age: options.max_age_days,
                        max_backup: options.max_backups,
                        max_size: options.max_size_mb,
                        path: &options.log_path,
                        format: "json",
                        policy,
                    },
                },
                extra_binds: vec![format!("{log_dir}:{log_dir}")],
            },
        },
    }
}

//! The Kubernetes objects of a set-up, built as typed values (k8s-openapi
//! for the built-in kinds) so that what is rendered is what the API server
//! accepts, field names and all.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, HostPathVolumeSource, Pod, PodSpec, Secret, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::error::SetupError;
use crate::options::AwsCredentials;

/// The ConfigMap that holds the audit policy in the cluster.
pub const POLICY_CONFIG_MAP_NAME: &str = "auditrail-audit-policy";
/// Its key: the policy file's name.
pub const POLICY_CONFIG_MAP_KEY: &str = "audit-policy.yaml";
/// The LogCollector the Tigera operator reads (cluster-scoped).
pub const LOG_COLLECTOR_NAME: &str = "tigera-secure";
/// The Secret the EKS log forwarder takes its AWS keys from.
pub const EKS_SECRET_NAME: &str = "tigera-eks-log-forwarder-secret";
/// Its namespace.
pub const EKS_SECRET_NAMESPACE: &str = "tigera-operator";

fn managed_by_auditrail() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "app.kubernetes.io/managed-by".to_owned(),
        "auditrail".to_owned(),
    )])
}

/// The policy ConfigMap. No namespace: the one applied to decides.
pub(crate) fn policy_config_map(policy_yaml: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(POLICY_CONFIG_MAP_NAME.to_owned()),
            labels: Some(managed_by_auditrail()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            POLICY_CONFIG_MAP_KEY.to_owned(),
            policy_yaml.to_owned(),
        )])),
        ..ConfigMap::default()
    }
}

/// The EKS log forwarder's credentials.
pub(crate) fn eks_secret(credentials: &AwsCredentials) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(EKS_SECRET_NAME.to_owned()),
            namespace: Some(EKS_SECRET_NAMESPACE.to_owned()),
            labels: Some(managed_by_auditrail()),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([
            (
                "aws-id".to_owned(),
                ByteString(credentials.access_key_id.clone().into_bytes()),
            ),
            (
                "aws-key".to_owned(),
                ByteString(credentials.secret_access_key.clone().into_bytes()),
            ),
        ])),
        ..Secret::default()
    }
}

/// What to merge into the static kube-apiserver pod
/// (`/etc/kubernetes/manifests/kube-apiserver.yaml`): the policy file and
/// the log directory mounted from the node. A strategic merge patch: the
/// lists merge by `name`.
pub(crate) fn apiserver_pod_patch(policy_path: &str, log_dir: &str) -> Pod {
    let host_path = |path: &str, type_: &str| HostPathVolumeSource {
        path: path.to_owned(),
        type_: Some(type_.to_owned()),
    };
    Pod {
        metadata: ObjectMeta {
            name: Some("kube-apiserver".to_owned()),
            namespace: Some("kube-system".to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "kube-apiserver".to_owned(),
                volume_mounts: Some(vec![
                    VolumeMount {
                        name: "audit-policy".to_owned(),
                        mount_path: policy_path.to_owned(),
                        read_only: Some(true),
                        ..VolumeMount::default()
                    },
                    VolumeMount {
                        name: "audit-logs".to_owned(),
                        mount_path: log_dir.to_owned(),
                        read_only: Some(false),
                        ..VolumeMount::default()
                    },
                ]),
                ..Container::default()
            }],
            volumes: Some(vec![
                Volume {
                    name: "audit-policy".to_owned(),
                    host_path: Some(host_path(policy_path, "File")),
                    ..Volume::default()
                },
                Volume {
                    name: "audit-logs".to_owned(),
                    host_path: Some(host_path(log_dir, "DirectoryOrCreate")),
                    ..Volume::default()
                },
            ]),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

/// `operator.tigera.io/v1` `LogCollector`: only the fields auditrail sets,
/// so that a server-side apply leaves the rest of the object alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogCollector {
    api_version: &'static str,
    kind: &'static str,
    metadata: NameOnly,
    spec: LogCollectorSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct NameOnly {
    name: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
struct LogCollectorSpec {
    additional_sources: AdditionalSources,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
struct AdditionalSources {
    eks_cloudwatch_log: EksCloudwatchLog,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
struct EksCloudwatchLog {
    region: String,
    group_name: String,
    stream_prefix: String,
    fetch_interval: u32,
}

/// The LogCollector with its EKS CloudWatch source.
pub(crate) fn log_collector(
    region: &str,
    group_name: &str,
    stream_prefix: &str,
    fetch_interval: u32,
) -> LogCollector {
    LogCollector {
        api_version: "operator.tigera.io/v1",
        kind: "LogCollector",
        metadata: NameOnly {
            name: LOG_COLLECTOR_NAME,
        },
        spec: LogCollectorSpec {
            additional_sources: AdditionalSources {
                eks_cloudwatch_log: EksCloudwatchLog {
                    region: region.to_owned(),
                    group_name: group_name.to_owned(),
                    stream_prefix: stream_prefix.to_owned(),
                    fetch_interval,
                },
            },
        },
    }
}

/// YAML of one document.
pub(crate) fn yaml<T: Serialize>(what: &'static str, value: &T) -> Result<String, SetupError> {
    serde_norway::to_string(value).map_err(|e| SetupError::Encode {
        what,
        message: e.to_string(),
    })
}

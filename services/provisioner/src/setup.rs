//! The mapping between the set-up messages (`RenderSetup`, `ApplySetup`) and
//! `auditrail-setup` / `auditrail-kube-apply` (their errors' gRPC codes
//! are decided in the `error` module).

use auditrail_kube_apply::{Action, AppliedObject, ApplyError, Manifest};
use auditrail_proto::v1;
use auditrail_setup::{Artifact, ArtifactKind, AwsCredentials, EksOptions, Platform, SetupOptions};

use crate::convert::{InvalidRequest, policy_request};

/// Where namespaced objects without a namespace go, as the proto documents.
pub(crate) const DEFAULT_NAMESPACE: &str = "auditrail";

/// The platform of a request; unset is refused.
pub(crate) fn platform(platform: v1::Platform) -> Result<Platform, InvalidRequest> {
    Ok(match platform {
        v1::Platform::Unspecified => {
            return Err(InvalidRequest::Required {
                field: "platform",
                hint: "onprem, eks, kops, rke (openshift is not supported)",
            });
        }
        v1::Platform::Onprem => Platform::OnPrem,
        v1::Platform::Eks => Platform::Eks,
        v1::Platform::Kops => Platform::Kops,
        v1::Platform::Rke => Platform::Rke,
        v1::Platform::Openshift => Platform::OpenShift,
    })
}

/// The domain options, with the proto's defaults for unset fields.
pub(crate) fn options(options: Option<v1::SetupOptions>) -> Result<SetupOptions, InvalidRequest> {
    let options = options.unwrap_or_default();
    let defaults = SetupOptions::default();
    let (profile, api_version) = (options.policy_profile(), options.api_version());
    let policy = policy_request(profile, options.extra_resources, api_version)?;
    let eks = options.eks.map(|eks| {
        let credentials = (!eks.aws_access_key_id.is_empty()
            || !eks.aws_secret_access_key.is_empty())
        .then_some(AwsCredentials {
            access_key_id: eks.aws_access_key_id,
            secret_access_key: eks.aws_secret_access_key,
        });
        EksOptions {
            cluster_name: eks.cluster_name,
            region: eks.region,
            log_group: non_empty(eks.log_group),
            stream_prefix: non_empty(eks.stream_prefix),
            fetch_interval_seconds: eks.fetch_interval_seconds,
            credentials,
        }
    });
    Ok(SetupOptions {
        policy,
        log_path: non_empty(options.log_path).unwrap_or(defaults.log_path),
        max_age_days: options.max_age_days.unwrap_or(defaults.max_age_days),
        max_backups: options.max_backups.unwrap_or(defaults.max_backups),
        max_size_mb: options.max_size_mb.unwrap_or(defaults.max_size_mb),
        policy_path: non_empty(options.policy_path),
        eks,
    })
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// The proto form of a rendered set-up.
pub(crate) fn rendered(setup: auditrail_setup::Setup) -> v1::RenderSetupResponse {
    v1::RenderSetupResponse {
        artifacts: setup.artifacts.into_iter().map(artifact).collect(),
        notes: setup.notes,
    }
}

fn artifact(artifact: Artifact) -> v1::Artifact {
    v1::Artifact {
        name: artifact.name,
        media_type: artifact.media_type,
        content: artifact.content,
        description: artifact.description,
        kind: match artifact.kind {
            ArtifactKind::AuditPolicy => v1::ArtifactKind::AuditPolicy,
            ArtifactKind::ApiServerFlags => v1::ArtifactKind::ApiserverFlags,
            ArtifactKind::ClusterConfig => v1::ArtifactKind::ClusterConfig,
            ArtifactKind::KubernetesManifest => v1::ArtifactKind::KubernetesManifest,
            ArtifactKind::CloudConfig => v1::ArtifactKind::CloudConfig,
        }
        .into(),
        sensitive: artifact.sensitive,
    }
}

/// The manifests to apply and the names of the artifacts skipped.
pub(crate) fn manifests(
    artifacts: Vec<v1::Artifact>,
) -> Result<(Vec<Manifest>, Vec<String>), InvalidRequest> {
    if artifacts.is_empty() {
        return Err(InvalidRequest::Required {
            field: "artifacts",
            hint: "pass what RenderSetup returned",
        });
    }
    let (manifests, skipped): (Vec<_>, Vec<_>) = artifacts
        .into_iter()
        .partition(|a| a.kind() == v1::ArtifactKind::KubernetesManifest);
    Ok((
        manifests
            .into_iter()
            .map(|a| Manifest {
                artifact: a.name,
                content: a.content,
            })
            .collect(),
        skipped.into_iter().map(|a| a.name).collect(),
    ))
}

/// The proto form of one applied object.
pub(crate) fn applied(object: AppliedObject) -> v1::AppliedObject {
    v1::AppliedObject {
        kind: object.kind,
        namespace: object.namespace.unwrap_or_default(),
        name: object.name,
        action: match object.action {
            Action::Created => v1::ApplyAction::Created,
            Action::Patched => v1::ApplyAction::Patched,
            Action::Unchanged => v1::ApplyAction::Unchanged,
        }
        .into(),
        dry_run: object.dry_run,
        api_version: object.api_version,
    }
}

/// A client for the kubeconfig's context `context`, as `kubectl --context`
/// makes one: the kubeconfig only, no in-cluster fallback.
pub(crate) async fn context_client(context: &str) -> Result<kube::Client, ApplyError> {
    let options = kube::config::KubeConfigOptions {
        context: Some(context.to_owned()),
        ..Default::default()
    };
    let config = kube::Config::from_kubeconfig(&options)
        .await
        .map_err(|e| ApplyError::NoConfiguration(format!("context {context:?}: {e}")))?;
    kube::Client::try_from(config)
        .map_err(|e| ApplyError::NoConfiguration(format!("context {context:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_options_take_the_documented_defaults() {
        let options = options(None).expect("valid");
        assert_eq!(options, SetupOptions::default());
        let options = super::options(Some(v1::SetupOptions {
            max_age_days: Some(0),
            eks: Some(v1::EksOptions {
                cluster_name: "c".to_owned(),
                region: "r".to_owned(),
                aws_secret_access_key: "only the secret".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .expect("valid");
        assert_eq!(options.max_age_days, 0, "0 is a value, not unset");
        let eks = options.eks.expect("eks");
        // One credential alone is passed on, for the renderer to refuse.
        assert_eq!(
            eks.credentials.map(|c| c.access_key_id),
            Some(String::new())
        );
    }
}

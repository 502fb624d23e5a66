//! EKS: the control plane's audit log goes to CloudWatch Logs (EKS does not
//! take a policy file), and the Tigera log collector reads it from there.

use serde::Serialize;

use crate::error::SetupError;
use crate::objects::{self, eks_secret, log_collector, yaml};
use crate::options::{EksOptions, SetupOptions};
use crate::render::{Artifact, ArtifactKind, Setup};

const DEFAULT_STREAM_PREFIX: &str = "kube-apiserver-audit-";
const DEFAULT_FETCH_INTERVAL_SECONDS: u32 = 60;

pub(crate) fn render(options: &SetupOptions) -> Result<Setup, SetupError> {
    let eks = options
        .eks
        .as_ref()
        .ok_or_else(|| SetupError::invalid("eks", "EKS needs the cluster name and region"))?;
    check(eks)?;
    let group = eks
        .log_group
        .clone()
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| format!("/aws/eks/{}/cluster", eks.cluster_name));
    let prefix = eks
        .stream_prefix
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_STREAM_PREFIX);
    let interval = eks
        .fetch_interval_seconds
        .unwrap_or(DEFAULT_FETCH_INTERVAL_SECONDS);
    let mut artifacts = vec![
        Artifact {
            name: "enable-eks-audit-logs.sh".to_owned(),
            media_type: "text/x-shellscript".to_owned(),
            content: enable_command(eks),
            description: "Turns on the control plane's audit log (to CloudWatch Logs); run it with AWS credentials allowed to update the cluster.".to_owned(),
            kind: ArtifactKind::CloudConfig,
            sensitive: false,
        },
        Artifact {
            name: "iam-policy.json".to_owned(),
            media_type: "application/json".to_owned(),
            content: iam_policy(&eks.region, &group)?,
            description: "The least-privilege IAM policy for reading the audit log group; attach it to the identity of the log forwarder.".to_owned(),
            kind: ArtifactKind::CloudConfig,
            sensitive: false,
        },
        Artifact {
            name: "logcollector.yaml".to_owned(),
            media_type: "application/yaml".to_owned(),
            content: yaml(
                "the LogCollector",
                &log_collector(&eks.region, &group, prefix, interval),
            )?,
            description: format!(
                "LogCollector {}: the EKS CloudWatch Logs source of the Tigera log collector.",
                objects::LOG_COLLECTOR_NAME
            ),
            kind: ArtifactKind::KubernetesManifest,
            sensitive: false,
        },
    ];
    let mut notes = vec![
        "EKS runs the control plane with its own audit policy; the policy profile does not apply there.".to_owned(),
        format!(
            "Audit events arrive in log group {group}, streams {prefix}*; the collector fetches them every {interval} s."
        ),
    ];
    if let Some(credentials) = &eks.credentials {
        artifacts.push(Artifact {
            name: "secret.yaml".to_owned(),
            media_type: "application/yaml".to_owned(),
            content: yaml("the Secret", &eks_secret(credentials))?,
            description: format!(
                "Secret {}/{}: the AWS keys of the log forwarder (aws-id, aws-key).",
                objects::EKS_SECRET_NAMESPACE,
                objects::EKS_SECRET_NAME
            ),
            kind: ArtifactKind::KubernetesManifest,
            sensitive: true,
        });
        notes.push("The Secret holds AWS keys: do not commit or print it.".to_owned());
    } else {
        notes.push(format!(
            "No AWS keys given, so no Secret {}/{} is rendered: give the forwarder an identity another way (e.g. IAM roles for service accounts) with the IAM policy attached.",
            objects::EKS_SECRET_NAMESPACE,
            objects::EKS_SECRET_NAME
        ));
    }
    Ok(Setup { artifacts, notes })
}

/// Checks what goes into the shell command and the IAM policy, so neither
/// can be anything but what it claims to be.
fn check(eks: &EksOptions) -> Result<(), SetupError> {
    let name = &eks.cluster_name;
    if name.is_empty() {
        return Err(SetupError::invalid("eks.cluster_name", "is required"));
    }
    let name_ok = name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(SetupError::invalid(
            "eks.cluster_name",
            format!(
                "{name:?} is not an EKS cluster name (letters, digits, '-' and '_', starting with a letter or digit, at most 100)"
            ),
        ));
    }
    let region = &eks.region;
    if region.is_empty() {
        return Err(SetupError::invalid("eks.region", "is required"));
    }
    if !region
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(SetupError::invalid(
            "eks.region",
            format!("{region:?} is not an AWS region (e.g. us-west-2)"),
        ));
    }
    if let Some(group) = eks.log_group.as_deref().filter(|g| !g.is_empty()) {
        let group_ok = group.len() <= 512
            && group
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-/.#".contains(c));
        if !group_ok {
            return Err(SetupError::invalid(
                "eks.log_group",
                format!("{group:?} is not a CloudWatch log group name"),
            ));
        }
    }
    if eks.fetch_interval_seconds == Some(0) {
        return Err(SetupError::invalid(
            "eks.fetch_interval_seconds",
            "must be positive",
        ));
    }
    if let Some(credentials) = &eks.credentials
        && (credentials.access_key_id.is_empty() || credentials.secret_access_key.is_empty())
    {
        return Err(SetupError::invalid(
            "eks.aws_access_key_id",
            "give both the access key id and the secret access key, or neither",
        ));
    }
    Ok(())
}

fn enable_command(eks: &EksOptions) -> String {
    format!(
        "#!/bin/sh\n# Sends the EKS control plane's audit log to CloudWatch Logs.\naws eks update-cluster-config \\\n  --region {} \\\n  --name {} \\\n  --logging '{{\"clusterLogging\":[{{\"types\":[\"audit\"],\"enabled\":true}}]}}'\n",
        eks.region, eks.cluster_name
    )
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IamPolicy {
    version: &'static str,
    statement: Vec<IamStatement>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IamStatement {
    sid: &'static str,
    effect: &'static str,
    action: Vec<&'static str>,
    resource: Vec<String>,
}

/// Reading the streams of one log group and nothing else.
fn iam_policy(region: &str, group: &str) -> Result<String, SetupError> {
    let arn = format!("arn:aws:logs:{region}:*:log-group:{group}");
    let policy = IamPolicy {
        version: "2012-10-17",
        statement: vec![IamStatement {
            sid: "ReadEksAuditLog",
            effect: "Allow",
            action: vec![
                "logs:DescribeLogStreams",
                "logs:FilterLogEvents",
                "logs:GetLogEvents",
            ],
            resource: vec![arn.clone(), format!("{arn}:log-stream:*")],
        }],
    };
    serde_json::to_string_pretty(&policy)
        .map(|json| json + "\n")
        .map_err(|e| SetupError::Encode {
            what: "the IAM policy",
            message: e.to_string(),
        })
}

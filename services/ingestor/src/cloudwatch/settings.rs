//! A CloudWatch source's settings, named as the product's LogCollector names
//! them (`region`, `groupName`, `streamPrefix`, `fetchInterval`: the
//! camelCase names are accepted as aliases, so a LogCollector's
//! `eksCloudwatchLog` block can be pasted), plus what tests and private
//! endpoints need.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default stream prefix of the EKS API server audit log.
pub const DEFAULT_STREAM_PREFIX: &str = "kube-apiserver-audit-";
/// Default seconds between two fetches (the LogCollector's default).
pub const DEFAULT_FETCH_INTERVAL_SECS: u64 = 60;
/// Longest fetch interval accepted: one day.
const MAX_FETCH_INTERVAL_SECS: u64 = 86_400;
/// File of the access key id in the mounted `tigera-eks-log-forwarder-secret`.
pub const KEY_ID_FILE: &str = "aws-id";
/// File of the secret access key in that Secret.
pub const SECRET_KEY_FILE: &str = "aws-key";

/// One CloudWatch Logs source: the EKS API server audit log of a cluster.
/// Its events are of type kube.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchSource {
    /// AWS region, e.g. `us-west-2`. When absent, the AWS default chain's
    /// (`AWS_REGION`, the profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Log group, `/aws/eks/<cluster>/cluster`.
    #[serde(alias = "groupName")]
    pub group_name: String,
    /// Only streams whose name starts with this are read.
    #[serde(default = "default_prefix", alias = "streamPrefix")]
    pub stream_prefix: String,
    /// Seconds between two fetches (stream discovery and reads).
    #[serde(
        default = "default_fetch_interval",
        alias = "fetchInterval",
        alias = "fetch_interval_secs"
    )]
    pub fetch_interval: u64,
    /// CloudWatch Logs endpoint URL instead of the region's (private
    /// endpoints, emulators in tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Where the very first run begins when the store holds no kube event
    /// of the cluster yet (RFC 3339). Absent: each stream from its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<jiff::Timestamp>,
    /// Directory holding the files `aws-id` and `aws-key` (the mounted
    /// Secret `tigera-eks-log-forwarder-secret`). Absent: the AWS default
    /// credential chain (environment, profile, web identity for IRSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_dir: Option<PathBuf>,
    /// Name of the source in status, metrics and dead letters. Absent:
    /// `cloudwatch:<group_name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

fn default_prefix() -> String {
    DEFAULT_STREAM_PREFIX.to_owned()
}

fn default_fetch_interval() -> u64 {
    DEFAULT_FETCH_INTERVAL_SECS
}

impl CloudWatchSource {
    /// A source for `group_name` with every other setting at its default.
    pub fn new(group_name: impl Into<String>) -> Self {
        Self {
            region: None,
            group_name: group_name.into(),
            stream_prefix: default_prefix(),
            fetch_interval: DEFAULT_FETCH_INTERVAL_SECS,
            endpoint: None,
            start_time: None,
            credentials_dir: None,
            name: None,
        }
    }

    /// The source's name.
    pub fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("cloudwatch:{}", self.group_name))
    }

    /// Time between two fetches.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.fetch_interval)
    }

    /// What is wrong with the source, if anything.
    pub fn problem(&self) -> Option<String> {
        let group = &self.group_name;
        if group.is_empty() || group.len() > 512 {
            return Some("group_name must be 1 to 512 characters".to_owned());
        }
        if !group
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-/.#".contains(c))
        {
            return Some(format!(
                "group_name {group:?} may only hold letters, digits and '_-/.#'"
            ));
        }
        if self.stream_prefix.len() > 512 || self.stream_prefix.contains(':') {
            return Some("stream_prefix must be at most 512 characters and hold no ':'".to_owned());
        }
        if self.fetch_interval == 0 || self.fetch_interval > MAX_FETCH_INTERVAL_SECS {
            return Some(format!(
                "fetch_interval must be between 1 and {MAX_FETCH_INTERVAL_SECS} seconds"
            ));
        }
        if let Some(region) = &self.region
            && (region.is_empty()
                || !region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        {
            return Some(format!("region {region:?} is not an AWS region name"));
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Some(format!(
                "endpoint {endpoint:?} must be an http:// or https:// URL"
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_collector_names_are_accepted() {
        let source: CloudWatchSource = serde_json::from_str(
            r#"{"region":"us-west-2","groupName":"/aws/eks/prod/cluster","streamPrefix":"kube-apiserver-audit-","fetchInterval":30}"#,
        )
        .unwrap();
        assert_eq!(source.group_name, "/aws/eks/prod/cluster");
        assert_eq!(source.fetch_interval, 30);
        assert_eq!(source.name(), "cloudwatch:/aws/eks/prod/cluster");
        assert_eq!(source.problem(), None);

        let defaults: CloudWatchSource =
            serde_json::from_str(r#"{"group_name":"/aws/eks/x/cluster"}"#).unwrap();
        assert_eq!(defaults.stream_prefix, DEFAULT_STREAM_PREFIX);
        assert_eq!(defaults.fetch_interval, DEFAULT_FETCH_INTERVAL_SECS);

        let unknown = serde_json::from_str::<CloudWatchSource>(
            r#"{"group_name":"/aws/eks/x/cluster","groupname":"typo"}"#,
        );
        assert!(unknown.is_err());
    }

    #[test]
    fn bad_values_are_named() {
        let bad = |f: fn(&mut CloudWatchSource)| {
            let mut s = CloudWatchSource::new("/aws/eks/prod/cluster");
            f(&mut s);
            s.problem().unwrap_or_default()
        };
        assert!(bad(|s| s.group_name.clear()).contains("group_name"));
        assert!(bad(|s| s.group_name = "a b".into()).contains("group_name"));
        assert!(bad(|s| s.fetch_interval = 0).contains("fetch_interval"));
        assert!(bad(|s| s.region = Some("US West".into())).contains("region"));
        assert!(bad(|s| s.endpoint = Some("localhost:5000".into())).contains("endpoint"));
        assert!(bad(|s| s.stream_prefix = "a:b".into()).contains("stream_prefix"));
        assert_eq!(bad(|_| {}), "");
    }
}

//! What the Elasticsearch store is configured with: where the cluster is,
//! how to authenticate, and how indices are laid out. Retention is not
//! here: it is the indexer's `retention_days`, handed to
//! [`crate::ElasticStore::connect`] with the [`crate::Role`], so that one
//! setting decides it whichever store keeps the trail.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::mapping::Naming;

/// How to authenticate.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// No authentication.
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// An API key, base64 of `id:key` as Elasticsearch hands it out.
    ApiKey(String),
    /// A bearer token (service account or OAuth).
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    // Secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Self::ApiKey(_) => f.write_str("ApiKey(***)"),
            Self::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// Where the cluster is and how the indices are laid out. Every field has a
/// default, so a configuration may name only what differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElasticOptions {
    /// Node URLs. Requests go round robin; one that cannot reach its node
    /// (or gets 502, 503 or 504 from it) is sent to the next node, which
    /// is safe because every request of this store is idempotent.
    pub urls: Vec<String>,
    /// Authentication.
    pub auth: Auth,
    /// PEM file of the CA that signed the cluster's certificate (https).
    /// The certificate must name the host of each URL (a DNS or IP SAN):
    /// with a custom CA the host name is always checked, and the
    /// certificates Elasticsearch generates often lack a Service's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// Index names: ours or the product's.
    pub naming: Naming,
    /// Retention by an ILM policy (else by the indexer deleting whole
    /// days every hour). Either way the retention is the indexer's
    /// `retention_days`.
    pub ilm: bool,
    /// Primary shards per daily index (one index per type and day holds
    /// every cluster with [`Naming::Auditrail`]).
    pub shards: u32,
    /// Replicas per index.
    pub replicas: u32,
    /// Timeout of one request, in seconds.
    pub timeout_secs: u64,
    /// Most bytes of one bulk request; a write is split into bulks of at
    /// most this size (one event larger than it goes alone). Well under
    /// Elasticsearch's `http.max_content_length` (100 MB by default).
    pub max_bulk_bytes: usize,
}

impl Default for ElasticOptions {
    fn default() -> Self {
        Self {
            urls: vec!["http://127.0.0.1:9200".to_owned()],
            auth: Auth::None,
            ca_cert: None,
            naming: Naming::Auditrail,
            ilm: true,
            shards: 1,
            replicas: 1,
            timeout_secs: 60,
            max_bulk_bytes: 10 << 20,
        }
    }
}

impl ElasticOptions {
    /// Options for one node at `url` without replicas (one-node clusters of
    /// tests and tools).
    pub fn for_url(url: &str) -> Self {
        Self {
            urls: vec![url.to_owned()],
            replicas: 0,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let auth = Auth::Basic {
            username: "elastic".into(),
            password: "hunter2".into(),
        };
        assert_eq!(format!("{auth:?}"), "Basic(elastic, ***)");
        assert!(!format!("{:?}", Auth::ApiKey("c2VjcmV0".into())).contains("c2VjcmV0"));
    }

    #[test]
    fn unknown_keys_are_refused_and_retention_is_not_a_store_key() {
        let err = serde_json::from_str::<ElasticOptions>(r#"{"retention_days": 30}"#)
            .expect_err("retention is the indexer's");
        assert!(err.to_string().contains("retention_days"), "{err}");
        let options: ElasticOptions =
            serde_json::from_str(r#"{"shards": 3, "max_bulk_bytes": 1024}"#).expect("valid");
        assert_eq!((options.shards, options.max_bulk_bytes), (3, 1024));
    }
}

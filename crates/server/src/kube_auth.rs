//! The cluster as identity provider and authorizer: Kubernetes TokenReview
//! turns a bearer token into a user and groups (service accounts, OIDC
//! users of the cluster), and SubjectAccessReview asks RBAC whether they
//! may use an auditrail permission, as verbs on virtual resources of the
//! `auditrail.io` group ([`auditrail_access::kubernetes_attributes`]).
//!
//! Reading may be granted per cluster: RBAC rules with `resourceNames`
//! (the cluster names) on `kube` or `ee`. When RBAC grants reading a type
//! on no cluster as a whole, each cluster the store holds is asked about
//! by name, and the caller reads the clusters granted for every type it
//! was granted anywhere. That never grants more than RBAC says (uneven
//! grants, say `kube` on `a` and `ee` on `b`, read less than they could).
//!
//! Both answers are cached for a short time (positive and negative, at
//! most `cache_entries` each, `cache_ttl_secs` long), so a page of calls
//! costs the API server one review. When the API server cannot be asked,
//! the call fails with UNAVAILABLE: access is never granted on a guess
//! (fail closed).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use auditrail_access::{Decision, Identity, Permission, Scope, Via};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use sha2::{Digest as _, Sha256};

/// A bounded cache of answers that expire.
struct Cache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: std::hash::Hash + Eq, V: Clone> Cache<K, V> {
    fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    fn put(&self, key: K, value: V) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= self.capacity {
                // Still full of live answers: start over rather than grow.
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }
}

/// Asks the Kubernetes API who a token is and what they may do.
pub(crate) struct KubeAuth {
    client: kube::Client,
    tokens: Cache<[u8; 32], Option<Identity>>,
    reviews: Cache<ReviewKey, bool>,
}

/// A review asked: user, groups, verb, resource, resource name.
type ReviewKey = (
    String,
    Vec<String>,
    &'static str,
    &'static str,
    Option<String>,
);

/// The clusters whose trail a process serves, for reviews per cluster.
#[tonic::async_trait]
pub trait ClusterCatalog: Send + Sync + 'static {
    /// The cluster names the store holds events of.
    async fn clusters(&self) -> Result<Vec<String>, String>;
}

/// The API server could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("the Kubernetes API cannot review this call: {0}")]
pub(crate) struct KubeAuthError(String);

impl KubeAuth {
    /// A reviewer through `client` caching for `ttl`, at most `capacity`
    /// answers of each kind.
    pub(crate) fn new(client: kube::Client, ttl: Duration, capacity: usize) -> Self {
        Self {
            client,
            tokens: Cache::new(ttl, capacity),
            reviews: Cache::new(ttl, capacity),
        }
    }

    /// The identity of `token` by TokenReview; `None` when the API says
    /// it is not authenticated.
    pub(crate) async fn authenticate(
        &self,
        token: &str,
    ) -> Result<Option<Identity>, KubeAuthError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(answer) = self.tokens.get(&key) {
            return Ok(answer);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let answer = bounded(
            "TokenReview",
            Api::<TokenReview>::all(self.client.clone()).create(&PostParams::default(), &review),
        )
        .await?;
        let status = answer.status.unwrap_or_default();
        let identity = if status.authenticated == Some(true) {
            let user = status.user.unwrap_or_default();
            user.username
                .filter(|u| !u.is_empty())
                .map(|name| Identity {
                    name,
                    groups: user.groups.unwrap_or_default(),
                    via: Via::Token,
                })
        } else {
            None
        };
        self.tokens.put(key, identity.clone());
        Ok(identity)
    }

    /// Whether RBAC lets `identity` use `permission`, by SubjectAccessReview
    /// on `auditrail.io` resources; reading is allowed over the event
    /// types RBAC allows.
    pub(crate) async fn authorize(
        &self,
        identity: &Identity,
        permission: Permission,
        catalog: Option<&dyn ClusterCatalog>,
    ) -> Result<Decision, KubeAuthError> {
        let (verb, resources) = auditrail_access::kubernetes_attributes(permission);
        let mut allowed = Vec::new();
        for resource in resources {
            if self.review(identity, verb, resource, None).await? {
                allowed.push((*resource).to_owned());
            }
        }
        Ok(match (permission, allowed.len(), catalog) {
            (Permission::Read, 0, Some(catalog)) => {
                self.per_cluster(identity, verb, resources, catalog).await?
            }
            (_, 0, _) => Decision::Deny,
            (Permission::Read, n, _) if n < resources.len() => Decision::Allow(Scope {
                clusters: None,
                types: Some(allowed.into_iter().collect()),
            }),
            _ => Decision::Allow(Scope::all()),
        })
    }

    /// Reading granted cluster by cluster: the clusters granted for every
    /// type granted on some cluster.
    async fn per_cluster(
        &self,
        identity: &Identity,
        verb: &'static str,
        types: &'static [&'static str],
        catalog: &dyn ClusterCatalog,
    ) -> Result<Decision, KubeAuthError> {
        let clusters = catalog
            .clusters()
            .await
            .map_err(|e| KubeAuthError(format!("the clusters to review: {e}")))?;
        let mut granted: Vec<(String, Vec<&'static str>)> = Vec::new();
        for cluster in clusters {
            let mut on = Vec::new();
            for resource in types {
                if self
                    .review(identity, verb, resource, Some(&cluster))
                    .await?
                {
                    on.push(*resource);
                }
            }
            if !on.is_empty() {
                granted.push((cluster, on));
            }
        }
        let types: std::collections::BTreeSet<&str> = granted
            .iter()
            .flat_map(|(_, on)| on.iter().copied())
            .collect();
        let clusters: std::collections::BTreeSet<String> = granted
            .into_iter()
            .filter(|(_, on)| types.iter().all(|t| on.contains(t)))
            .map(|(cluster, _)| cluster)
            .collect();
        if clusters.is_empty() {
            return Ok(Decision::Deny);
        }
        Ok(Decision::Allow(Scope {
            clusters: Some(clusters),
            types: Some(types.into_iter().map(str::to_owned).collect()),
        }))
    }

    async fn review(
        &self,
        identity: &Identity,
        verb: &'static str,
        resource: &'static str,
        name: Option<&str>,
    ) -> Result<bool, KubeAuthError> {
        let key = (
            identity.name.clone(),
            identity.groups.clone(),
            verb,
            resource,
            name.map(str::to_owned),
        );
        if let Some(allowed) = self.reviews.get(&key) {
            return Ok(allowed);
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(identity.name.clone()),
                groups: Some(identity.groups.clone()),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(auditrail_access::KUBERNETES_GROUP.to_owned()),
                    resource: Some(resource.to_owned()),
                    verb: Some(verb.to_owned()),
                    name: name.map(str::to_owned),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let answer = bounded(
            "SubjectAccessReview",
            Api::<SubjectAccessReview>::all(self.client.clone())
                .create(&PostParams::default(), &review),
        )
        .await?;
        let allowed = answer.status.is_some_and(|s| s.allowed);
        self.reviews.put(key, allowed);
        Ok(allowed)
    }
}

/// How long one review may take before the call fails UNAVAILABLE: a call
/// waits on it, so a slow API server must not hold calls for minutes.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs one review within [`REVIEW_TIMEOUT`].
async fn bounded<T>(
    what: &str,
    review: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, KubeAuthError> {
    match tokio::time::timeout(REVIEW_TIMEOUT, review).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(KubeAuthError(format!("{what}: {e}"))),
        Err(_) => Err(KubeAuthError(format!(
            "{what}: no answer within {} s",
            REVIEW_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_expires_and_stays_bounded() {
        let cache = Cache::new(Duration::from_millis(50), 2);
        cache.put(1, "a");
        cache.put(2, "b");
        assert_eq!(cache.get(&1), Some("a"));
        cache.put(3, "c");
        assert!(cache.entries.lock().map_or(0, |e| e.len()) <= 2);
        assert_eq!(cache.get(&3), Some("c"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(&3), None, "expired");
    }
}

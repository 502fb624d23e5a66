//! Deciding which rule of a policy applies to a request, as kube-apiserver does.
//!
//! Reproduces `k8s.io/apiserver/pkg/audit/policy/checker.go`: rules are tried
//! in order and the first match wins; no match means level `None` with the
//! policy's own `omitStages`/`omitManagedFields`. The wildcard forms
//! (`*`, `res/*`, `*/sub`, trailing `*` in URLs) and their quirks, such as
//! `pods/*` also matching plain `pods`, follow upstream exactly, so auditrail
//! can say what the API server *would* have recorded for a request.

use crate::model::{Level, Stage};
use crate::validate::{ValidatedPolicy, ValidatedRule};

/// The authenticated user of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// User name, e.g. `system:kube-proxy`.
    pub name: String,
    /// Groups the user belongs to.
    pub groups: Vec<String>,
}

/// The part of a resource request the policy looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceAttributes {
    /// Namespace, `""` for cluster-scoped resources.
    pub namespace: String,
    /// API group, `""` for the core group.
    pub api_group: String,
    /// Resource, e.g. `pods`.
    pub resource: String,
    /// Subresource, e.g. `log`; `""` if none.
    pub subresource: String,
    /// Object name; `""` for lists and creates without a name.
    pub name: String,
}

impl ResourceAttributes {
    /// A cluster-wide request for `resource` of `api_group`.
    pub fn new(api_group: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            api_group: api_group.into(),
            resource: resource.into(),
            ..Self::default()
        }
    }

    /// Sets the namespace.
    #[must_use]
    pub fn in_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets the subresource.
    #[must_use]
    pub fn with_subresource(mut self, subresource: impl Into<String>) -> Self {
        self.subresource = subresource.into();
        self
    }

    /// Sets the object name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

/// What a request addresses: an API resource or a plain URL path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestTarget {
    /// A request to an API resource (`/api/...`, `/apis/...`).
    Resource(ResourceAttributes),
    /// Any other request, e.g. `/healthz` or `/version`.
    NonResource {
        /// The URL path.
        path: String,
    },
}

/// The attributes of a request that audit rules are matched against
/// (the subset of `authorizer.Attributes` that `checker.go` reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAttributes {
    /// The user, if the request was authenticated.
    pub user: Option<UserInfo>,
    /// Verb, e.g. `get`, `list`, `watch`, `create`.
    pub verb: String,
    /// Resource or non-resource target.
    pub target: RequestTarget,
}

impl RequestAttributes {
    /// A resource request with no user.
    pub fn resource(verb: impl Into<String>, resource: ResourceAttributes) -> Self {
        Self {
            user: None,
            verb: verb.into(),
            target: RequestTarget::Resource(resource),
        }
    }

    /// A non-resource request with no user.
    pub fn non_resource(verb: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            user: None,
            verb: verb.into(),
            target: RequestTarget::NonResource { path: path.into() },
        }
    }

    /// Sets the user.
    #[must_use]
    pub fn with_user<I, S>(mut self, name: impl Into<String>, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.user = Some(UserInfo {
            name: name.into(),
            groups: groups.into_iter().map(Into::into).collect(),
        });
        self
    }
}

/// What the policy decides for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDecision {
    /// The level recorded (`None` when no rule matches).
    pub level: Level,
    /// Stages not recorded, sorted and deduplicated.
    pub omit_stages: Vec<Stage>,
    /// Whether managed fields are dropped from recorded bodies.
    pub omit_managed_fields: bool,
    /// 0-based index of the matching rule, `None` if no rule matched.
    pub rule: Option<usize>,
}

impl ValidatedPolicy {
    /// Evaluates the rules in order; the first match decides.
    pub fn evaluate(&self, attrs: &RequestAttributes) -> AuditDecision {
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.matches(attrs) {
                return AuditDecision {
                    level: rule.level,
                    omit_stages: rule.omit_stages.clone(),
                    omit_managed_fields: rule
                        .omit_managed_fields
                        .unwrap_or(self.omit_managed_fields),
                    rule: Some(i),
                };
            }
        }
        AuditDecision {
            level: Level::None,
            omit_stages: self.omit_stages.clone(),
            omit_managed_fields: self.omit_managed_fields,
            rule: None,
        }
    }
}

impl ValidatedRule {
    /// Whether this rule, taken alone, applies to the request.
    pub fn matches(&self, attrs: &RequestAttributes) -> bool {
        if !self.users.is_empty() {
            match &attrs.user {
                Some(user) if self.users.contains(&user.name) => {}
                _ => return false,
            }
        }
        if !self.user_groups.is_empty() {
            let Some(user) = &attrs.user else {
                return false;
            };
            if !user.groups.iter().any(|g| self.user_groups.contains(g)) {
                return false;
            }
        }
        if !self.verbs.is_empty() && !self.verbs.contains(&attrs.verb) {
            return false;
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            return self.matches_resource(&attrs.target);
        }
        if !self.non_resource_urls.is_empty() {
            return self.matches_non_resource(&attrs.target);
        }
        true
    }

    fn matches_non_resource(&self, target: &RequestTarget) -> bool {
        let RequestTarget::NonResource { path } = target else {
            return false;
        };
        self.non_resource_urls
            .iter()
            .any(|spec| path_matches(path, spec))
    }

    fn matches_resource(&self, target: &RequestTarget) -> bool {
        let RequestTarget::Resource(r) = target else {
            return false;
        };
        // Cluster-scoped requests have the namespace "".
        if !self.namespaces.is_empty() && !self.namespaces.contains(&r.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        for gr in self.resources.iter().filter(|gr| gr.group == r.api_group) {
            if gr.resources.is_empty() {
                return true;
            }
            if !gr.resource_names.is_empty() && !gr.resource_names.contains(&r.name) {
                continue;
            }
            if gr.resources.iter().any(|res| resource_matches(res, r)) {
                return true;
            }
        }
        false
    }
}

/// One entry of `GroupResources.resources` against a request.
fn resource_matches(res: &str, r: &ResourceAttributes) -> bool {
    // "*" and the exact "resource" or "resource/subresource".
    if res == "*" || is_combined_resource(res, &r.resource, &r.subresource) {
        return true;
    }
    // "*/subresource": any resource's given subresource.
    if !r.subresource.is_empty() && res.strip_prefix("*/") == Some(r.subresource.as_str()) {
        return true;
    }
    // "resource/*": any subresource of the resource, and (upstream quirk,
    // the subresource is not required) the resource itself.
    res.strip_suffix("/*") == Some(r.resource.as_str())
}

/// `res == resource` (no subresource) or `res == resource + "/" + subresource`.
fn is_combined_resource(res: &str, resource: &str, subresource: &str) -> bool {
    if subresource.is_empty() {
        return res == resource;
    }
    res.strip_prefix(resource)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|rest| rest == subresource)
}

/// `checker.go`'s `pathMatches`: `*`, exact, or trailing-`*` prefix.
fn path_matches(path: &str, spec: &str) -> bool {
    spec == "*"
        || spec == path
        || (spec.ends_with('*') && path.starts_with(spec.trim_end_matches('*')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Policy;

    fn policy(body: &str) -> ValidatedPolicy {
        Policy::from_yaml(&format!(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\n{body}"
        ))
        .expect("loads")
        .validate()
        .expect("valid")
    }

    /// The index of the matching rule for a one-rule-per-case policy.
    fn rule_of(p: &ValidatedPolicy, attrs: &RequestAttributes) -> Option<usize> {
        p.evaluate(attrs).rule
    }

    fn get(res: ResourceAttributes) -> RequestAttributes {
        RequestAttributes::resource("get", res)
    }

    fn pods() -> ResourceAttributes {
        ResourceAttributes::new("", "pods").in_namespace("default")
    }

    #[test]
    fn first_match_wins() {
        let p = policy(
            "rules:\n- level: Request\n  resources: [{group: \"\", resources: [pods]}]\n- level: Metadata\n  resources: [{group: \"\", resources: [pods]}]\n- level: RequestResponse\n",
        );
        let d = p.evaluate(&get(pods()));
        assert_eq!((d.level, d.rule), (Level::Request, Some(0)));
        let d = p.evaluate(&get(ResourceAttributes::new("", "secrets")));
        assert_eq!((d.level, d.rule), (Level::RequestResponse, Some(2)));
    }

    #[test]
    fn empty_rule_matches_everything() {
        let p = policy("rules:\n- level: Metadata\n");
        assert_eq!(rule_of(&p, &get(pods())), Some(0));
        assert_eq!(
            rule_of(&p, &RequestAttributes::non_resource("get", "/healthz")),
            Some(0)
        );
    }

    #[test]
    fn no_match_is_none_with_policy_settings() {
        let p = policy(
            "omitStages: [ResponseComplete, RequestReceived, RequestReceived]\nomitManagedFields: true\nrules:\n- level: Metadata\n  verbs: [delete]\n  omitManagedFields: false\n",
        );
        let d = p.evaluate(&get(pods()));
        assert_eq!(
            d,
            AuditDecision {
                level: Level::None,
                omit_stages: vec![Stage::RequestReceived, Stage::ResponseComplete],
                omit_managed_fields: true,
                rule: None,
            }
        );
    }

    #[test]
    fn users_exact_membership() {
        let p = policy("rules:\n- level: None\n  users: [alice, \"system:kube-proxy\"]\n");
        assert_eq!(rule_of(&p, &get(pods()).with_user("alice", ["g"])), Some(0));
        assert_eq!(
            rule_of(
                &p,
                &get(pods()).with_user("system:kube-proxy", Vec::<String>::new())
            ),
            Some(0)
        );
        assert_eq!(rule_of(&p, &get(pods()).with_user("Alice", ["g"])), None);
        assert_eq!(rule_of(&p, &get(pods()).with_user("ali*", ["g"])), None);
        // No user at all never matches a users rule.
        assert_eq!(rule_of(&p, &get(pods())), None);
    }

    #[test]
    fn users_list_is_not_a_wildcard() {
        let p = policy("rules:\n- level: None\n  users: [\"*\"]\n");
        assert_eq!(rule_of(&p, &get(pods()).with_user("alice", ["g"])), None);
        assert_eq!(rule_of(&p, &get(pods()).with_user("*", ["g"])), Some(0));
    }

    #[test]
    fn user_groups_any_group_matches() {
        let p =
            policy("rules:\n- level: None\n  userGroups: [\"system:nodes\", \"system:masters\"]\n");
        assert_eq!(
            rule_of(
                &p,
                &get(pods()).with_user("n", ["system:authenticated", "system:masters"])
            ),
            Some(0)
        );
        assert_eq!(
            rule_of(&p, &get(pods()).with_user("n", ["system:authenticated"])),
            None
        );
        assert_eq!(
            rule_of(&p, &get(pods()).with_user("n", Vec::<String>::new())),
            None
        );
        assert_eq!(rule_of(&p, &get(pods())), None);
    }

    #[test]
    fn users_and_groups_must_both_match() {
        let p = policy("rules:\n- level: None\n  users: [bob]\n  userGroups: [ops]\n");
        assert_eq!(rule_of(&p, &get(pods()).with_user("bob", ["ops"])), Some(0));
        assert_eq!(rule_of(&p, &get(pods()).with_user("bob", ["dev"])), None);
        assert_eq!(rule_of(&p, &get(pods()).with_user("eve", ["ops"])), None);
    }

    #[test]
    fn verbs_exact_membership() {
        let p = policy("rules:\n- level: None\n  verbs: [watch, list]\n");
        assert_eq!(
            rule_of(&p, &RequestAttributes::resource("watch", pods())),
            Some(0)
        );
        assert_eq!(
            rule_of(&p, &RequestAttributes::resource("list", pods())),
            Some(0)
        );
        assert_eq!(
            rule_of(&p, &RequestAttributes::resource("get", pods())),
            None
        );
        assert_eq!(
            rule_of(&p, &RequestAttributes::non_resource("watch", "/x")),
            Some(0)
        );
        let star = policy("rules:\n- level: None\n  verbs: [\"*\"]\n");
        assert_eq!(
            rule_of(&star, &RequestAttributes::resource("get", pods())),
            None
        );
    }

    #[test]
    fn namespaces_and_cluster_scoped() {
        let p = policy(
            "rules:\n- level: None\n  namespaces: [kube-system]\n- level: Metadata\n  namespaces: [\"\"]\n",
        );
        assert_eq!(
            rule_of(&p, &get(pods().in_namespace("kube-system"))),
            Some(0)
        );
        assert_eq!(rule_of(&p, &get(pods())), None);
        assert_eq!(
            rule_of(&p, &get(ResourceAttributes::new("", "nodes"))),
            Some(1)
        );
        // A namespaces-only rule is a resource rule: never matches non-resource requests.
        assert_eq!(
            rule_of(&p, &RequestAttributes::non_resource("get", "/healthz")),
            None
        );
    }

    #[test]
    fn namespaces_combined_with_resources() {
        let p = policy(
            "rules:\n- level: Request\n  namespaces: [kube-system]\n  resources: [{group: \"\", resources: [configmaps]}]\n",
        );
        let cm = ResourceAttributes::new("", "configmaps");
        assert_eq!(
            rule_of(&p, &get(cm.clone().in_namespace("kube-system"))),
            Some(0)
        );
        assert_eq!(rule_of(&p, &get(cm.in_namespace("default"))), None);
        assert_eq!(rule_of(&p, &get(pods().in_namespace("kube-system"))), None);
    }

    #[test]
    fn groups_are_exact_and_core_is_empty() {
        let p = policy(
            "rules:\n- level: None\n  resources: [{group: \"\", resources: [deployments]}]\n- level: Metadata\n  resources: [{group: apps, resources: [deployments]}]\n",
        );
        assert_eq!(
            rule_of(&p, &get(ResourceAttributes::new("", "deployments"))),
            Some(0)
        );
        assert_eq!(
            rule_of(&p, &get(ResourceAttributes::new("apps", "deployments"))),
            Some(1)
        );
        assert_eq!(
            rule_of(
                &p,
                &get(ResourceAttributes::new("extensions", "deployments"))
            ),
            None
        );
        assert_eq!(
            rule_of(
                &p,
                &get(ResourceAttributes::new("apps.k8s.io", "deployments"))
            ),
            None
        );
    }

    #[test]
    fn plain_resource_does_not_match_subresources() {
        let p = policy("rules:\n- level: None\n  resources: [{group: \"\", resources: [pods]}]\n");
        assert_eq!(rule_of(&p, &get(pods())), Some(0));
        assert_eq!(rule_of(&p, &get(pods().with_subresource("log"))), None);
        assert_eq!(
            rule_of(&p, &get(ResourceAttributes::new("", "podsx"))),
            None
        );
    }

    #[test]
    fn resource_with_subresource() {
        let p =
            policy("rules:\n- level: None\n  resources: [{group: \"\", resources: [pods/log]}]\n");
        assert_eq!(rule_of(&p, &get(pods().with_subresource("log"))), Some(0));
        assert_eq!(rule_of(&p, &get(pods().with_subresource("exec"))), None);
        assert_eq!(rule_of(&p, &get(pods())), None);
        assert_eq!(
            rule_of(
                &p,
                &get(ResourceAttributes::new("", "nodes").with_subresource("log"))
            ),
            None
        );
    }

    #[test]
    fn resource_slash_star_matches_all_subresources_and_the_resource() {
        let p = policy(
            "rules:\n- level: None\n  resources: [{group: \"\", resources: [\"pods/*\"]}]\n",
        );
        assert_eq!(rule_of(&p, &get(pods().with_subresource("log"))), Some(0));
        assert_eq!(rule_of(&p, &get(pods().with_subresource("exec"))), Some(0));
        // Upstream quirk: the subresource is not required.
        assert_eq!(rule_of(&p, &get(pods())), Some(0));
        assert_eq!(
            rule_of(
                &p,
                &get(ResourceAttributes::new("", "services").with_subresource("proxy"))
            ),
            None
        );
    }

    #[test]
    fn star_slash_subresource_needs_that_subresource() {
        let p = policy(
            "rules:\n- level: None\n  resources: [{group: apps, resources: [\"*/scale\"]}]\n",
        );
        let deploy = ResourceAttributes::new("apps", "deployments").in_namespace("default");
        assert_eq!(
            rule_of(&p, &get(deploy.clone().with_subresource("scale"))),
            Some(0)
        );
        assert_eq!(
            rule_of(
                &p,
                &get(ResourceAttributes::new("apps", "statefulsets").with_subresource("scale"))
            ),
            Some(0)
        );
        assert_eq!(rule_of(&p, &get(deploy.clone())), None);
        assert_eq!(rule_of(&p, &get(deploy.with_subresource("status"))), None);
    }

    #[test]
    fn star_matches_every_resource_and_subresource_of_the_group() {
        let p = policy("rules:\n- level: None\n  resources: [{group: \"\", resources: [\"*\"]}]\n");
        assert_eq!(rule_of(&p, &get(pods())), Some(0));
        assert_eq!(rule_of(&p, &get(pods().with_subresource("log"))), Some(0));
        assert_eq!(
            rule_of(&p, &get(ResourceAttributes::new("apps", "deployments"))),
            None
        );
    }

    #[test]
    fn wildcards_are_trimmed_once_like_trim_prefix_and_suffix() {
        // Upstream uses strings.TrimPrefix/TrimSuffix, which remove one "*/" or "/*".
        let p = policy(
            "rules:\n- level: None\n  resources: [{group: \"\", resources: [\"pods/*/*\", \"*//log\"]}]\n",
        );
        assert_eq!(rule_of(&p, &get(pods().with_subresource("exec"))), None);
        assert_eq!(rule_of(&p, &get(pods().with_subresource("log"))), None);
        assert_eq!(rule_of(&p, &get(pods().with_subresource("/log"))), Some(0));
    }

    #[test]
    fn resource_names_restrict_by_name() {
        let p = policy(
            "rules:\n- level: None\n  resources: [{group: \"\", resources: [configmaps], resourceNames: [controller-leader]}]\n",
        );
        let cm = ResourceAttributes::new("", "configmaps").in_namespace("kube-system");
        assert_eq!(
            rule_of(&p, &get(cm.clone().with_name("controller-leader"))),
            Some(0)
        );
        assert_eq!(rule_of(&p, &get(cm.clone().with_name("other"))), None);
        assert_eq!(rule_of(&p, &RequestAttributes::resource("list", cm)), None);
    }

    #[test]
    fn resource_names_apply_per_group_entry() {
        let p = policy(
            "rules:\n- level: None\n  resources:\n  - {group: \"\", resources: [secrets], resourceNames: [a]}\n  - {group: \"\", resources: [secrets]}\n",
        );
        let s = ResourceAttributes::new("", "secrets");
        assert_eq!(rule_of(&p, &get(s.with_name("b"))), Some(0));
    }

    #[test]
    fn empty_resources_list_matches_whole_group() {
        let p =
            policy("rules:\n- level: Request\n  resources: [{group: \"\"}, {group: extensions}]\n");
        assert_eq!(rule_of(&p, &get(pods().with_subresource("log"))), Some(0));
        assert_eq!(
            rule_of(&p, &get(ResourceAttributes::new("extensions", "ingresses"))),
            Some(0)
        );
        assert_eq!(
            rule_of(&p, &get(ResourceAttributes::new("apps", "deployments"))),
            None
        );
    }

    #[test]
    fn resource_rule_never_matches_non_resource_request() {
        let p = policy("rules:\n- level: None\n  resources: [{group: \"\"}]\n");
        assert_eq!(
            rule_of(&p, &RequestAttributes::non_resource("get", "/api/v1/pods")),
            None
        );
    }

    #[test]
    fn non_resource_rule_never_matches_resource_request() {
        let p = policy("rules:\n- level: None\n  nonResourceURLs: [\"*\"]\n");
        assert_eq!(rule_of(&p, &get(pods())), None);
        assert_eq!(
            rule_of(&p, &RequestAttributes::non_resource("get", "/anything")),
            Some(0)
        );
    }

    #[test]
    fn non_resource_urls_exact_and_prefix() {
        let p = policy("rules:\n- level: None\n  nonResourceURLs: [/version, \"/api*\"]\n");
        let nr = |path: &str| RequestAttributes::non_resource("get", path);
        assert_eq!(rule_of(&p, &nr("/version")), Some(0));
        assert_eq!(rule_of(&p, &nr("/version/")), None);
        assert_eq!(rule_of(&p, &nr("/versions")), None);
        assert_eq!(rule_of(&p, &nr("/api")), Some(0));
        assert_eq!(rule_of(&p, &nr("/apis/apps/v1")), Some(0));
        assert_eq!(rule_of(&p, &nr("/ap")), None);
        assert_eq!(rule_of(&p, &nr("/healthz")), None);
    }

    #[test]
    fn omit_stages_union_of_policy_and_rule_deduplicated() {
        let p = policy(
            "omitStages: [RequestReceived]\nrules:\n- level: Metadata\n  verbs: [get]\n  omitStages: [Panic, RequestReceived]\n- level: Request\n",
        );
        assert_eq!(
            p.evaluate(&get(pods())).omit_stages,
            vec![Stage::RequestReceived, Stage::Panic]
        );
        assert_eq!(
            p.evaluate(&RequestAttributes::resource("create", pods()))
                .omit_stages,
            vec![Stage::RequestReceived]
        );
    }

    #[test]
    fn omit_managed_fields_rule_overrides_policy() {
        let p = policy(
            "omitManagedFields: true\nrules:\n- level: Request\n  verbs: [get]\n  omitManagedFields: false\n- level: Request\n  verbs: [list]\n- level: Request\n",
        );
        assert!(!p.evaluate(&get(pods())).omit_managed_fields);
        assert!(
            p.evaluate(&RequestAttributes::resource("list", pods()))
                .omit_managed_fields
        );
        let q = policy("rules:\n- level: Request\n  omitManagedFields: true\n");
        assert!(q.evaluate(&get(pods())).omit_managed_fields);
    }

    #[test]
    fn path_and_combined_helpers() {
        assert!(path_matches("/x", "*"));
        assert!(path_matches("/x/y", "/x*"));
        assert!(!path_matches("/x", "/x/*"));
        // strings.TrimRight removes every trailing '*' (such specs fail validation anyway).
        assert!(path_matches("/logs/", "/logs/**"));
        assert!(is_combined_resource("pods/log", "pods", "log"));
        assert!(!is_combined_resource("pods/log", "pods", ""));
        assert!(!is_combined_resource("podslog", "pods", "log"));
        assert!(!is_combined_resource("pods/logs", "pods", "log"));
    }
}

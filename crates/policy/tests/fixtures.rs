//! The documented example policies load, validate and evaluate as documented.

use auditrail_policy::{
    API_VERSION_V1, API_VERSION_V1BETA1, AuditDecision, Level, Policy, RequestAttributes,
    ResourceAttributes, Stage, ValidatedPolicy, ValidatedRule,
};

const K8S_DOCS_EXAMPLE: &str = include_str!("fixtures/audit-policy.yaml");
const CALICO_V1BETA1: &str = include_str!("fixtures/calico-enterprise-v1beta1.yaml");

fn load(src: &str) -> ValidatedPolicy {
    let (policy, warnings) = Policy::from_yaml_with_warnings(src).expect("fixture loads");
    assert!(warnings.is_empty(), "{warnings:?}");
    policy.validate().expect("fixture is valid")
}

fn decision(level: Level, rule: Option<usize>, omit: &[Stage]) -> AuditDecision {
    AuditDecision {
        level,
        omit_stages: omit.to_vec(),
        omit_managed_fields: false,
        rule,
    }
}

fn core(resource: &str) -> ResourceAttributes {
    ResourceAttributes::new("", resource).in_namespace("default")
}

const RR: &[Stage] = &[Stage::RequestReceived];

#[test]
fn docs_example_loads_as_v1_with_nine_rules() {
    let policy = Policy::from_yaml(K8S_DOCS_EXAMPLE).expect("loads");
    assert_eq!(policy.api_version, API_VERSION_V1);
    assert_eq!(policy.deprecation_warning(), None);
    assert_eq!(policy.omit_stages, vec!["RequestReceived"]);
    let v = policy.validate().expect("valid");
    let levels: Vec<Level> = v.rules().iter().map(ValidatedRule::level).collect();
    assert_eq!(
        levels,
        vec![
            Level::RequestResponse,
            Level::Metadata,
            Level::None,
            Level::None,
            Level::None,
            Level::Request,
            Level::Metadata,
            Level::Request,
            Level::Metadata,
        ]
    );
    // The policy-wide omitStages is folded into every rule.
    assert!(v.rules().iter().all(|r| r.omit_stages() == RR));
}

#[test]
fn docs_example_pods_and_their_subresources() {
    let v = load(K8S_DOCS_EXAMPLE);
    let create_pod = RequestAttributes::resource("create", core("pods").with_name("web"));
    assert_eq!(
        v.evaluate(&create_pod),
        decision(Level::RequestResponse, Some(0), RR)
    );
    // "pods/log" is listed in the second rule: Metadata, not the pods rule.
    let logs =
        RequestAttributes::resource("get", core("pods").with_name("web").with_subresource("log"));
    assert_eq!(v.evaluate(&logs), decision(Level::Metadata, Some(1), RR));
    let status = RequestAttributes::resource("patch", core("pods").with_subresource("status"));
    assert_eq!(v.evaluate(&status), decision(Level::Metadata, Some(1), RR));
    // pods/exec is in neither: it falls to "everything in core" at Request.
    let exec = RequestAttributes::resource("create", core("pods").with_subresource("exec"));
    assert_eq!(v.evaluate(&exec), decision(Level::Request, Some(7), RR));
}

#[test]
fn docs_example_configmaps_and_secrets() {
    let v = load(K8S_DOCS_EXAMPLE);
    let leader = RequestAttributes::resource(
        "update",
        ResourceAttributes::new("", "configmaps")
            .in_namespace("kube-system")
            .with_name("controller-leader"),
    );
    assert_eq!(v.evaluate(&leader), decision(Level::None, Some(2), RR));
    let ks_cm = RequestAttributes::resource(
        "update",
        ResourceAttributes::new("", "configmaps")
            .in_namespace("kube-system")
            .with_name("coredns"),
    );
    assert_eq!(v.evaluate(&ks_cm), decision(Level::Request, Some(5), RR));
    let cm = RequestAttributes::resource("update", core("configmaps").with_name("app"));
    assert_eq!(v.evaluate(&cm), decision(Level::Metadata, Some(6), RR));
    let secret = RequestAttributes::resource("get", core("secrets").with_name("token"));
    assert_eq!(v.evaluate(&secret), decision(Level::Metadata, Some(6), RR));
}

#[test]
fn docs_example_kube_proxy_watches() {
    let v = load(K8S_DOCS_EXAMPLE);
    let watch = |res: &str, user: &str| {
        RequestAttributes::resource("watch", ResourceAttributes::new("", res))
            .with_user(user, ["system:authenticated"])
    };
    assert_eq!(
        v.evaluate(&watch("endpoints", "system:kube-proxy")).rule,
        Some(3)
    );
    assert_eq!(
        v.evaluate(&watch("services", "system:kube-proxy")).level,
        Level::None
    );
    // Another user, or another verb, is not covered by rule 3.
    assert_eq!(
        v.evaluate(&watch("endpoints", "alice")),
        decision(Level::Request, Some(7), RR)
    );
    let list = RequestAttributes::resource("list", ResourceAttributes::new("", "endpoints"))
        .with_user("system:kube-proxy", ["system:authenticated"]);
    assert_eq!(v.evaluate(&list).rule, Some(7));
}

#[test]
fn docs_example_non_resource_paths() {
    let v = load(K8S_DOCS_EXAMPLE);
    let authn = |path: &str| {
        RequestAttributes::non_resource("get", path).with_user("alice", ["system:authenticated"])
    };
    assert_eq!(
        v.evaluate(&authn("/apis")),
        decision(Level::None, Some(4), RR)
    );
    assert_eq!(v.evaluate(&authn("/api/v1")).rule, Some(4));
    assert_eq!(v.evaluate(&authn("/version")).rule, Some(4));
    assert_eq!(
        v.evaluate(&authn("/healthz")),
        decision(Level::Metadata, Some(8), RR)
    );
    let anon = RequestAttributes::non_resource("get", "/version")
        .with_user("system:anonymous", ["system:unauthenticated"]);
    assert_eq!(v.evaluate(&anon), decision(Level::Metadata, Some(8), RR));
}

#[test]
fn docs_example_other_groups() {
    let v = load(K8S_DOCS_EXAMPLE);
    let ingress = RequestAttributes::resource(
        "create",
        ResourceAttributes::new("extensions", "ingresses").in_namespace("web"),
    );
    assert_eq!(v.evaluate(&ingress), decision(Level::Request, Some(7), RR));
    let node =
        RequestAttributes::resource("get", ResourceAttributes::new("", "nodes").with_name("n1"));
    assert_eq!(v.evaluate(&node).rule, Some(7));
    let deploy = RequestAttributes::resource(
        "update",
        ResourceAttributes::new("apps", "deployments").in_namespace("web"),
    );
    assert_eq!(v.evaluate(&deploy), decision(Level::Metadata, Some(8), RR));
}

#[test]
fn calico_v1beta1_loads_with_deprecation_warning() {
    let policy = Policy::from_yaml(CALICO_V1BETA1).expect("loads");
    assert_eq!(policy.api_version, API_VERSION_V1BETA1);
    assert_eq!(
        policy.deprecation_warning(),
        Some("audit.k8s.io/v1beta1 was removed in Kubernetes 1.24; use audit.k8s.io/v1")
    );
    let v = policy.validate().expect("valid");
    assert_eq!(v.rules().len(), 2);
    assert!(v.omit_stages().is_empty());
    assert!(
        v.rules()
            .iter()
            .all(|r| r.level() == Level::RequestResponse && r.omit_stages() == RR)
    );
}

#[test]
fn calico_v1beta1_evaluates_writes_only() {
    let v = load(CALICO_V1BETA1);
    let calico = |verb: &str, res: &str| {
        RequestAttributes::resource(
            verb,
            ResourceAttributes::new("projectcalico.org", res).with_name("default.deny"),
        )
        .with_user("admin", ["system:masters"])
    };
    assert_eq!(
        v.evaluate(&calico("update", "globalnetworkpolicies")),
        decision(Level::RequestResponse, Some(0), RR)
    );
    assert_eq!(v.evaluate(&calico("create", "tiers")).rule, Some(0));
    assert_eq!(
        v.evaluate(&calico("delete", "stagednetworkpolicies")).rule,
        Some(0)
    );
    // Reads are not covered and nothing else matches: level None, no stages.
    assert_eq!(
        v.evaluate(&calico("get", "globalnetworkpolicies")),
        decision(Level::None, None, &[])
    );
    assert_eq!(
        v.evaluate(&calico("watch", "networkpolicies")).level,
        Level::None
    );
    // The CRD group behind Calico's API server is a different group.
    let crd = RequestAttributes::resource(
        "update",
        ResourceAttributes::new("crd.projectcalico.org", "globalnetworkpolicies"),
    );
    assert_eq!(v.evaluate(&crd).rule, None);

    let knp = RequestAttributes::resource(
        "patch",
        ResourceAttributes::new("networking.k8s.io", "networkpolicies").in_namespace("prod"),
    );
    assert_eq!(
        v.evaluate(&knp),
        decision(Level::RequestResponse, Some(1), RR)
    );
    assert_eq!(
        v.evaluate(&RequestAttributes::resource("delete", core("pods")))
            .rule,
        Some(1)
    );
    assert_eq!(
        v.evaluate(&RequestAttributes::resource("create", core("configmaps")))
            .rule,
        None
    );
}

#[test]
fn fixtures_round_trip_through_yaml_and_json() {
    for src in [K8S_DOCS_EXAMPLE, CALICO_V1BETA1] {
        let policy = Policy::from_yaml(src).expect("loads");
        let yaml = policy.to_yaml().expect("encodes");
        assert_eq!(Policy::from_yaml(&yaml).expect("reloads"), policy, "{yaml}");
        let json = policy.to_json().expect("encodes");
        assert!(!json.contains("null"), "{json}");
        assert_eq!(Policy::from_json(&json).expect("reloads"), policy, "{json}");
    }
}

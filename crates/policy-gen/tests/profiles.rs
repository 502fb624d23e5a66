//! The generated policies: byte for byte against the golden files, valid for
//! the API server, clean for the lint, and recording what each profile
//! promises. `UPDATE_GOLDEN=1 cargo test -p auditrail-policy-gen` rewrites
//! the golden files.

use std::path::PathBuf;

use auditrail_policy::{Level, Policy, RequestAttributes, ResourceAttributes, ValidatedPolicy};
use auditrail_policy_gen::{
    AuditApiVersion, GenerateError, GroupResource, PolicyRequest, Profile, generate, lint,
};

fn golden(name: &str, actual: &str) {
    let path = manifest_dir().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(actual, expected, "{name} differs from its golden file");
}

fn generated(request: &PolicyRequest) -> (String, ValidatedPolicy, Vec<String>) {
    let generated = generate(request).expect("generated");
    let yaml = generated.policy.to_yaml().expect("encoded");
    // What is written must load back to the same policy and validate.
    let loaded = Policy::from_yaml(&yaml).expect("loads");
    assert_eq!(loaded, generated.policy);
    let validated = loaded.validate().expect("validates");
    (yaml, validated, generated.warnings)
}

fn user_request(verb: &str, group: &str, resource: &str, namespace: &str) -> RequestAttributes {
    RequestAttributes::resource(
        verb,
        ResourceAttributes::new(group, resource).in_namespace(namespace),
    )
    .with_user("alice", ["system:authenticated"])
}

#[test]
fn every_profile_matches_its_golden_file_and_lints_clean() {
    for profile in Profile::ALL {
        let (yaml, policy, warnings) = generated(&PolicyRequest::new(profile));
        golden(&format!("{}.yaml", profile.as_str()), &yaml);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(lint(&policy), Vec::new(), "{}", profile.as_str());
    }
}

#[test]
fn network_policy_records_writes_of_the_compliance_resources_only() {
    let (_, policy, _) = generated(&PolicyRequest::new(Profile::NetworkPolicy));
    for (group, resource) in [
        ("networking.k8s.io", "networkpolicies"),
        ("extensions", "networkpolicies"),
        ("", "pods"),
        ("", "serviceaccounts"),
        ("", "endpoints"),
    ] {
        for verb in ["create", "patch", "update", "delete"] {
            let decision = policy.evaluate(&user_request(verb, group, resource, "prod"));
            assert_eq!(decision.level, Level::RequestResponse, "{verb} {resource}");
            assert_eq!(
                decision.omit_stages,
                vec![auditrail_policy::Stage::RequestReceived]
            );
        }
        let read = policy.evaluate(&user_request("get", group, resource, "prod"));
        assert_eq!(read.level, Level::None, "get {resource}");
    }
    let secret = policy.evaluate(&user_request("create", "", "secrets", "prod"));
    assert_eq!(secret.level, Level::None);
}

#[test]
fn calico_records_the_nine_calico_kinds() {
    let (_, policy, _) = generated(&PolicyRequest::new(Profile::Calico));
    for resource in auditrail_policy_gen::CALICO_RESOURCES {
        let decision = policy.evaluate(&user_request("patch", "projectcalico.org", resource, ""));
        assert_eq!(decision.level, Level::RequestResponse, "{resource}");
    }
    let pod = policy.evaluate(&user_request("delete", "", "pods", "prod"));
    assert_eq!(pod.level, Level::None);
}

#[test]
fn extended_records_what_a_security_team_expects() {
    let (_, policy, _) = generated(&PolicyRequest::new(Profile::Extended));
    let kube_proxy = |verb: &str, group: &str, resource: &str| {
        RequestAttributes::resource(verb, ResourceAttributes::new(group, resource))
            .with_user("system:kube-proxy", ["system:authenticated"])
    };
    let node_status = |user: &str, groups: &[&str]| {
        RequestAttributes::resource(
            "get",
            ResourceAttributes::new("", "nodes")
                .with_name("node-1")
                .with_subresource("status"),
        )
        .with_user(user, groups.iter().copied())
    };
    let non_resource = |path: &str| RequestAttributes::non_resource("get", path);
    for (request, expected) in [
        (
            user_request("delete", "", "pods", "prod"),
            Level::RequestResponse,
        ),
        (
            user_request("patch", "networking.k8s.io", "networkpolicies", "prod"),
            Level::RequestResponse,
        ),
        // Credentials and configuration: never their bodies.
        (user_request("get", "", "secrets", "prod"), Level::Metadata),
        (
            user_request("update", "", "secrets", "prod"),
            Level::Metadata,
        ),
        (
            user_request("get", "", "configmaps", "prod"),
            Level::Metadata,
        ),
        (
            user_request("create", "authentication.k8s.io", "tokenreviews", ""),
            Level::Metadata,
        ),
        // Other reads with their request, other writes as metadata.
        (
            user_request("list", "apps", "deployments", "prod"),
            Level::Request,
        ),
        (
            user_request("update", "apps", "deployments", "prod"),
            Level::Metadata,
        ),
        (non_resource("/metrics"), Level::Request),
        // High-volume read-only system traffic: nothing.
        (non_resource("/healthz"), Level::None),
        (non_resource("/readyz/etcd"), Level::None),
        (non_resource("/version"), Level::None),
        (
            kube_proxy("watch", "discovery.k8s.io", "endpointslices"),
            Level::None,
        ),
        (kube_proxy("watch", "", "services"), Level::None),
        (
            node_status("system:node:node-1", &["system:nodes"]),
            Level::None,
        ),
        // Someone else reading a node is a read like any other.
        (
            node_status("alice", &["system:authenticated"]),
            Level::Request,
        ),
    ] {
        assert_eq!(policy.evaluate(&request).level, expected, "{request:?}");
    }
}

#[test]
fn extra_resources_are_recorded_like_the_profiles_own() {
    let request = PolicyRequest {
        profile: Profile::NetworkPolicy,
        extra_resources: vec![
            "apps/deployments".parse().expect("valid"),
            "configmaps".parse().expect("valid"),
            "networking.k8s.io/networkpolicies".parse().expect("valid"),
        ],
        api_version: AuditApiVersion::V1,
    };
    let (yaml, policy, warnings) = generated(&request);
    golden("network-policy-extra.yaml", &yaml);
    assert_eq!(
        warnings,
        vec![
            "extra resource networking.k8s.io/networkpolicies is already audited by the network-policy profile; ignored"
        ]
    );
    for (group, resource) in [("apps", "deployments"), ("", "configmaps")] {
        let decision = policy.evaluate(&user_request("delete", group, resource, "prod"));
        assert_eq!(decision.level, Level::RequestResponse, "{resource}");
    }
}

#[test]
fn v1beta1_on_request_with_a_warning() {
    let request = PolicyRequest {
        api_version: AuditApiVersion::V1beta1,
        ..PolicyRequest::new(Profile::NetworkPolicy)
    };
    let (yaml, _, warnings) = generated(&request);
    golden("network-policy-v1beta1.yaml", &yaml);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("removed in Kubernetes 1.24"),
        "{warnings:?}"
    );
}

#[test]
fn a_hand_built_bad_extra_resource_is_refused() {
    let request = PolicyRequest {
        extra_resources: vec![GroupResource {
            group: "Not_A_Group".to_owned(),
            resource: "things".to_owned(),
        }],
        ..PolicyRequest::default()
    };
    let error = generate(&request).expect_err("refused");
    assert!(
        matches!(&error, GenerateError::InvalidResource { value, .. } if value == "Not_A_Group/things"),
        "{error}"
    );
}

/// This package's directory: cargo's value at run time, which is right even
/// when the test binary was built by another checkout sharing the target
/// directory (the compile-time value would name that checkout).
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

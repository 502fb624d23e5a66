//! The provisioner service: audit policies (generate, validate, evaluate) and the per-platform set-up that makes the API server write the audit trail.
//!
//! The service is a thin shell: domain logic lives in the library crates under
//! `crates/`, the translation between the gRPC messages and that logic in
//! the `convert` (policies) and `setup` (platform set-up) modules, the gRPC
//! code of every failure in the `error` module, and the server around it
//! (health, reflection, metrics, shutdown) in `auditrail-server`.
//!
//! - `GeneratePolicy`: the profiles of `auditrail-policy-gen`.
//! - `ValidatePolicy`: with `auditrail-policy`, and so with kube-apiserver's
//!   own loading and validation, the API server's errors (field path and
//!   message, or one document-level error with its line and column when the
//!   text does not load); as `WARNING` findings the warnings of loading
//!   (`unknown-field`), of the removed `v1beta1` (`deprecated-api-version`)
//!   and of validation (`unknown-omit-stage`), and for a valid policy the
//!   compliance lint of `auditrail-policy-gen`.
//! - `EvaluatePolicy`: level, omitted stages, `omitManagedFields` and the
//!   index of the matching rule, with the API server's matching semantics.
//! - `RenderSetup`: `auditrail-setup`; OpenShift is `FAILED_PRECONDITION`.
//! - `ApplySetup`: `auditrail-kube-apply`, with a `kube::Client` from
//!   kubeconfig or the in-cluster service account, made per call (so a
//!   changed kubeconfig is picked up) unless one was given
//!   ([`Provisioner::with_kube_client`]) or a kubeconfig context was named
//!   ([`Provisioner::with_kube_context`]).
//!
//! The `auditrail` CLI runs this same service in its own process when no
//! `--server` is given, so local and remote answers are the same code.

mod convert;
mod error;
mod setup;

use auditrail_policy::Policy;
use auditrail_proto::v1;
use auditrail_proto::v1::provision_service_server::{ProvisionService, ProvisionServiceServer};
use auditrail_server::Services;
use convert::InvalidRequest;
use error::ProvisionError;
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

/// The provisioner's own settings: the `[provisioner]` table (none yet:
/// it is stateless and applies with the kubeconfig or in-cluster identity).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {}

impl auditrail_server::Service for Provisioner {
    const NAME: &'static str = "provisioner";
    const DEFAULT_PORT: u16 = auditrail_server::ports::PROVISIONER.grpc;
    const DEFAULT_METRICS_PORT: u16 = auditrail_server::ports::PROVISIONER.metrics;
    type Settings = Settings;
    type Shared = ();
    type Error = std::convert::Infallible;

    fn check(_settings: &Settings) -> Result<(), Self::Error> {
        Ok(())
    }

    fn add_to(services: Services, _settings: &Settings, (): ()) -> Result<Services, Self::Error> {
        Ok(services.with(ProvisionServiceServer::new(Self::default())))
    }
}

/// The `ProvisionService` implementation.
#[derive(Clone, Default)]
pub struct Provisioner {
    /// The cluster `ApplySetup` writes to.
    kube: KubeSource,
}

/// Where `ApplySetup` gets its cluster from.
#[derive(Clone, Default)]
enum KubeSource {
    /// kubeconfig (`KUBECONFIG`, `~/.kube/config`; its current context),
    /// else the in-cluster service account.
    #[default]
    Environment,
    /// One context of the kubeconfig, as `kubectl --context` (no in-cluster
    /// fallback).
    Context(String),
    /// A client made by the caller.
    Client(kube::Client),
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kube = match &self.kube {
            KubeSource::Environment => "kubeconfig or in-cluster".to_owned(),
            KubeSource::Context(context) => format!("kubeconfig context {context:?}"),
            KubeSource::Client(_) => "given client".to_owned(),
        };
        f.debug_struct("Provisioner").field("kube", &kube).finish()
    }
}

impl Provisioner {
    /// A provisioner that applies through `client` instead of kubeconfig or
    /// the in-cluster configuration.
    pub fn with_kube_client(client: kube::Client) -> Self {
        Self {
            kube: KubeSource::Client(client),
        }
    }

    /// A provisioner that applies through the kubeconfig's context
    /// `context` (as `kubectl --context`), read at each `ApplySetup`.
    pub fn with_kube_context(context: impl Into<String>) -> Self {
        Self {
            kube: KubeSource::Context(context.into()),
        }
    }

    async fn kube_client(&self) -> Result<kube::Client, ProvisionError> {
        Ok(match &self.kube {
            KubeSource::Client(client) => client.clone(),
            KubeSource::Environment => auditrail_kube_apply::default_client().await?,
            KubeSource::Context(context) => setup::context_client(context).await?,
        })
    }

    fn generate(
        request: v1::GeneratePolicyRequest,
    ) -> Result<v1::GeneratePolicyResponse, ProvisionError> {
        let (profile, api_version) = (request.profile(), request.api_version());
        let policy_request =
            convert::policy_request(profile, request.extra_resources, api_version)?;
        // The request was checked above; what is left is a bug.
        let generated =
            auditrail_policy_gen::generate(&policy_request).map_err(ProvisionError::internal)?;
        let policy_yaml = generated
            .policy
            .to_yaml()
            .map_err(ProvisionError::internal)?;
        Ok(v1::GeneratePolicyResponse {
            policy_yaml,
            warnings: generated.warnings,
        })
    }

    async fn validate(
        request: v1::ValidatePolicyRequest,
    ) -> Result<v1::ValidatePolicyResponse, ProvisionError> {
        convert::policy_text(&request.policy_yaml)?;
        let yaml = request.policy_yaml;
        // Problems in the policy are answers, not RPC errors.
        on_cpu_pool(move || match Policy::from_yaml_with_warnings(&yaml) {
            Ok((policy, unknown_fields)) => convert::validation_report(&policy, &unknown_fields),
            Err(e) => convert::load_failure(&e),
        })
        .await
    }

    async fn evaluate(
        request: v1::EvaluatePolicyRequest,
    ) -> Result<v1::EvaluatePolicyResponse, ProvisionError> {
        convert::policy_text(&request.policy_yaml)?;
        let attributes = convert::request_attributes(request.attributes)?;
        let yaml = request.policy_yaml;
        let answer = on_cpu_pool(move || {
            let policy = Policy::from_yaml(&yaml)
                .map_err(|e| convert::load_refusal(&e))?
                .validate()
                .map_err(|e| convert::validation_refusal(&e))?;
            Ok::<_, InvalidRequest>(convert::evaluation(&policy.evaluate(&attributes)))
        })
        .await??;
        Ok(answer)
    }

    fn render(request: v1::RenderSetupRequest) -> Result<v1::RenderSetupResponse, ProvisionError> {
        let platform = setup::platform(request.platform())?;
        let options = setup::options(request.options)?;
        let rendered = auditrail_setup::render(platform, &options)?;
        Ok(setup::rendered(rendered))
    }

    async fn apply(
        &self,
        request: v1::ApplySetupRequest,
    ) -> Result<v1::ApplySetupResponse, ProvisionError> {
        let (manifests, skipped_artifacts) = setup::manifests(request.artifacts)?;
        let namespace = if request.namespace.is_empty() {
            setup::DEFAULT_NAMESPACE
        } else {
            &request.namespace
        };
        let objects = if manifests.is_empty() {
            Vec::new() // nothing to apply: no cluster needed
        } else {
            let client = self.kube_client().await?;
            auditrail_kube_apply::apply(&client, &manifests, namespace, request.dry_run).await?
        };
        Ok(v1::ApplySetupResponse {
            objects: objects.into_iter().map(setup::applied).collect(),
            skipped_artifacts,
            dry_run: request.dry_run,
        })
    }
}

/// Parsing, validating and evaluating policies is CPU work on input from
/// callers. It runs on tokio's blocking threads, at most as many at once as
/// the machine has cores, so that it never holds a runtime worker and so
/// cannot starve every other call of the server.
async fn on_cpu_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ProvisionError> {
    static SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from))
    });
    let _slot = SLOTS
        .acquire()
        .await
        .map_err(|_| ProvisionError::ShuttingDown)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ProvisionError::internal(format!("policy work failed: {e}")))
}

#[tonic::async_trait]
impl ProvisionService for Provisioner {
    async fn generate_policy(
        &self,
        request: Request<v1::GeneratePolicyRequest>,
    ) -> Result<Response<v1::GeneratePolicyResponse>, Status> {
        Self::generate(request.into_inner())
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn validate_policy(
        &self,
        request: Request<v1::ValidatePolicyRequest>,
    ) -> Result<Response<v1::ValidatePolicyResponse>, Status> {
        Self::validate(request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn evaluate_policy(
        &self,
        request: Request<v1::EvaluatePolicyRequest>,
    ) -> Result<Response<v1::EvaluatePolicyResponse>, Status> {
        Self::evaluate(request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn render_setup(
        &self,
        request: Request<v1::RenderSetupRequest>,
    ) -> Result<Response<v1::RenderSetupResponse>, Status> {
        Self::render(request.into_inner())
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn apply_setup(
        &self,
        request: Request<v1::ApplySetupRequest>,
    ) -> Result<Response<v1::ApplySetupResponse>, Status> {
        self.apply(request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditrail_proto::v1::request_attributes::Target;
    use tonic::Code;

    const HEADER: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";

    /// Writes to the compliance resources at RequestResponse, the healthz
    /// family dropped, one user's reads of secrets at Metadata, nothing else.
    const POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: RequestResponse
  verbs: [create, update, patch, delete]
  resources:
  - group: \"\"
    resources: [pods, namespaces, serviceaccounts, endpoints]
  - group: networking.k8s.io
    resources: [networkpolicies]
  - group: extensions
    resources: [networkpolicies]
  omitManagedFields: true
- level: None
  nonResourceURLs: [\"/healthz*\", /livez, /readyz]
- level: Metadata
  users: [auditor]
  resources:
  - group: \"\"
    resources: [secrets]
  omitStages: [ResponseStarted]
";

    async fn validate(policy_yaml: &str) -> Result<v1::ValidatePolicyResponse, Status> {
        Provisioner::default()
            .validate_policy(Request::new(v1::ValidatePolicyRequest {
                policy_yaml: policy_yaml.to_owned(),
            }))
            .await
            .map(Response::into_inner)
    }

    async fn evaluate(
        policy_yaml: &str,
        attributes: Option<v1::RequestAttributes>,
    ) -> Result<v1::EvaluatePolicyResponse, Status> {
        Provisioner::default()
            .evaluate_policy(Request::new(v1::EvaluatePolicyRequest {
                policy_yaml: policy_yaml.to_owned(),
                attributes,
            }))
            .await
            .map(Response::into_inner)
    }

    fn resource(verb: &str, group: &str, res: &str, namespace: &str) -> v1::RequestAttributes {
        v1::RequestAttributes {
            verb: verb.to_owned(),
            target: Some(Target::Resource(v1::ResourceAttributes {
                api_group: group.to_owned(),
                resource: res.to_owned(),
                namespace: namespace.to_owned(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn non_resource(verb: &str, path: &str) -> v1::RequestAttributes {
        v1::RequestAttributes {
            verb: verb.to_owned(),
            target: Some(Target::NonResource(v1::NonResourceAttributes {
                path: path.to_owned(),
            })),
            ..Default::default()
        }
    }

    fn fields(response: &v1::ValidatePolicyResponse) -> Vec<(&str, &str)> {
        response
            .errors
            .iter()
            .map(|e| (e.field.as_str(), e.message.as_str()))
            .collect()
    }

    fn codes(response: &v1::ValidatePolicyResponse) -> Vec<&str> {
        response.findings.iter().map(|f| f.code.as_str()).collect()
    }

    fn invalid_argument<T: std::fmt::Debug>(result: Result<T, Status>) -> String {
        let status = result.expect_err("should be refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        status.message().to_owned()
    }

    #[tokio::test]
    async fn a_valid_policy_is_valid_without_findings() {
        let response = validate(POLICY).await.expect("answered");
        assert_eq!(
            response,
            v1::ValidatePolicyResponse {
                valid: true,
                errors: Vec::new(),
                findings: Vec::new(),
            }
        );
    }

    #[tokio::test]
    async fn validation_errors_carry_the_api_servers_paths_and_messages() {
        let policy = format!(
            "{HEADER}rules:\n- level: Metadata\n- level: Loud\n  nonResourceURLs: [healthz]\n- omitStages: [Later]\n  resources:\n  - group: Bad_Group\n"
        );
        let response = validate(&policy).await.expect("answered, not refused");
        assert!(!response.valid);
        assert_eq!(
            fields(&response),
            vec![
                (
                    "rules[1].level",
                    r#"Unsupported value: "Loud": supported values: "None", "Metadata", "Request", "RequestResponse""#
                ),
                (
                    "rules[1].nonResourceURLs[0]",
                    r#"Invalid value: "healthz": non-resource URL rules must begin with a '/' character"#
                ),
                ("rules[2].level", "Required value"),
                (
                    "rules[2].resources.group",
                    r#"Invalid value: "Bad_Group": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
                ),
                (
                    "rules[2].omitStages[0]",
                    r#"Invalid value: "Later": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic"#
                ),
            ]
        );
        assert!(response.findings.is_empty());
    }

    #[tokio::test]
    async fn malformed_yaml_is_an_answer_with_line_and_column() {
        // The flow sequence opened on line 5 is still open on line 6.
        let policy = format!("{HEADER}rules:\n- level: None\n  users: [a, b\n- level: Metadata\n");
        let response = validate(&policy).await.expect("answered, not refused");
        assert!(!response.valid);
        assert_eq!(response.errors.len(), 1);
        let error = &response.errors[0];
        assert_eq!(error.field, "", "a document-level error has no path");
        assert!(
            error
                .message
                .starts_with("failed parsing policy document: ")
                && error.message.contains(" at line 6 column 8"),
            "{}",
            error.message
        );
    }

    #[tokio::test]
    async fn a_type_error_is_an_answer_with_its_line() {
        let policy = format!("{HEADER}omitManagedFields: maybe\nrules:\n- level: None\n");
        let response = validate(&policy).await.expect("answered");
        assert!(!response.valid);
        assert_eq!(fields(&response).len(), 1);
        assert!(
            response.errors[0].message.contains("line 3"),
            "{}",
            response.errors[0].message
        );
    }

    #[tokio::test]
    async fn documents_that_are_not_policies_are_answers_too() {
        for (text, expected) in [
            ("kind: Policy\nrules: [{level: None}]\n", "no apiVersion"),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Event\nrules: [{level: None}]\n",
                "unsupported kind",
            ),
            (HEADER, "0 rules"),
            ("just words", "must be a mapping"),
        ] {
            let response = validate(text).await.expect("answered");
            assert!(!response.valid, "{text}");
            assert_eq!(response.errors.len(), 1, "{text}");
            assert_eq!(response.errors[0].field, "", "{text}");
            assert!(
                response.errors[0].message.contains(expected),
                "{text}: {}",
                response.errors[0].message
            );
        }
    }

    #[tokio::test]
    async fn v1beta1_is_valid_with_a_deprecation_warning() {
        let policy = POLICY.replace("audit.k8s.io/v1\n", "audit.k8s.io/v1beta1\n");
        let response = validate(&policy).await.expect("answered");
        assert!(response.valid);
        assert!(response.errors.is_empty());
        assert_eq!(response.findings.len(), 1);
        let finding = &response.findings[0];
        assert_eq!(finding.code, "deprecated-api-version");
        assert_eq!(finding.severity(), v1::LintSeverity::Warning);
        assert_eq!(finding.rule_index, None);
        assert!(finding.message.contains("1.24"), "{}", finding.message);
    }

    #[tokio::test]
    async fn load_warnings_are_findings_ordered_by_code() {
        let policy = "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nomitStages: [Sometimes]\nrules:\n- level: None\n  namespace: [kube-system]\n";
        let response = validate(policy).await.expect("answered");
        assert!(response.valid);
        // Policy-wide findings first, then the compliance lint's on rule 0.
        let mut expected = vec![
            "deprecated-api-version",
            "unknown-field",
            "unknown-omit-stage",
        ];
        expected.extend(["compliance-writes-not-captured"; 6]);
        assert_eq!(codes(&response), expected);
        assert!(
            response.findings[1]
                .message
                .contains(r#"unknown field "rules[0].namespace""#),
            "{:?}",
            response.findings[1]
        );
        assert!(response.findings[2].message.contains("Sometimes"));
        // Load warnings are reported even when validation fails.
        let invalid =
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n  verb: [get]\n";
        let response = validate(invalid).await.expect("answered");
        assert!(!response.valid);
        assert_eq!(codes(&response), vec!["unknown-field"]);
    }

    #[tokio::test]
    async fn validate_refuses_empty_and_oversized_text() {
        let message = invalid_argument(validate("").await);
        assert!(message.contains("policy_yaml is required"), "{message}");
        let huge = format!("{POLICY}{}", "#".repeat(convert::MAX_POLICY_BYTES));
        let message = invalid_argument(validate(&huge).await);
        assert!(message.contains("1 MiB"), "{message}");
    }

    #[tokio::test]
    async fn evaluates_resource_requests_with_the_matched_rule() {
        let created = evaluate(POLICY, Some(resource("create", "", "pods", "default")))
            .await
            .expect("evaluated");
        assert_eq!(
            created,
            v1::EvaluatePolicyResponse {
                level: "RequestResponse".to_owned(),
                omit_stages: vec!["RequestReceived".to_owned()],
                omit_managed_fields: true,
                matched_rule_index: Some(0),
            }
        );
        let mut read = resource("get", "", "secrets", "default");
        read.user = "auditor".to_owned();
        read.groups = vec!["system:authenticated".to_owned()];
        assert_eq!(
            evaluate(POLICY, Some(read)).await.expect("evaluated"),
            v1::EvaluatePolicyResponse {
                level: "Metadata".to_owned(),
                omit_stages: vec!["RequestReceived".to_owned(), "ResponseStarted".to_owned()],
                omit_managed_fields: false,
                matched_rule_index: Some(2),
            }
        );
        // Nobody else's secret reads, and no pod reads, match any rule.
        for unmatched in [
            resource("get", "", "secrets", "default"),
            resource("get", "", "pods", "default"),
        ] {
            assert_eq!(
                evaluate(POLICY, Some(unmatched)).await.expect("evaluated"),
                v1::EvaluatePolicyResponse {
                    level: "None".to_owned(),
                    omit_stages: vec!["RequestReceived".to_owned()],
                    omit_managed_fields: false,
                    matched_rule_index: None,
                }
            );
        }
    }

    #[tokio::test]
    async fn evaluates_non_resource_requests() {
        let healthz = evaluate(POLICY, Some(non_resource("get", "/healthz/etcd")))
            .await
            .expect("evaluated");
        assert_eq!(
            (healthz.level.as_str(), healthz.matched_rule_index),
            ("None", Some(1))
        );
        let version = evaluate(POLICY, Some(non_resource("get", "/version")))
            .await
            .expect("evaluated");
        assert_eq!(
            (version.level.as_str(), version.matched_rule_index),
            ("None", None)
        );
        let catch_all =
            format!("{HEADER}rules:\n- level: Metadata\n  userGroups: [system:authenticated]\n");
        let mut attributes = non_resource("get", "/version");
        attributes.groups = vec!["system:authenticated".to_owned()];
        let version = evaluate(&catch_all, Some(attributes))
            .await
            .expect("evaluated");
        assert_eq!(
            (version.level.as_str(), version.matched_rule_index),
            ("Metadata", Some(0))
        );
    }

    #[tokio::test]
    async fn evaluate_refuses_an_invalid_policy_with_its_messages() {
        let policy =
            format!("{HEADER}rules:\n- level: Loud\n- level: None\n  omitStages: [Later]\n");
        let message =
            invalid_argument(evaluate(&policy, Some(resource("get", "", "pods", ""))).await);
        assert!(
            message.starts_with(
                r#"policy_yaml does not validate: rules[0].level: Unsupported value: "Loud""#
            ),
            "{message}"
        );
        assert!(
            message.contains("(and 1 more: rules[1].omitStages[0]: Invalid value: \"Later\""),
            "{message}"
        );
    }

    #[tokio::test]
    async fn evaluate_refuses_a_policy_that_does_not_load() {
        let message =
            invalid_argument(evaluate("rules: [", Some(resource("get", "", "pods", ""))).await);
        assert!(
            message.starts_with("policy_yaml does not load: failed parsing policy document: ")
                && message.contains("at line 2 column 1"),
            "{message}"
        );
        let message =
            invalid_argument(evaluate(HEADER, Some(resource("get", "", "pods", ""))).await);
        assert!(message.contains("0 rules"), "{message}");
    }

    #[tokio::test]
    async fn evaluate_refuses_incomplete_requests_naming_the_field() {
        let cases = [
            (
                String::new(),
                Some(resource("get", "", "pods", "")),
                "policy_yaml is required",
            ),
            (POLICY.to_owned(), None, "attributes is required"),
            (
                POLICY.to_owned(),
                Some(resource("", "", "pods", "")),
                "attributes.verb is required",
            ),
            (
                POLICY.to_owned(),
                Some(v1::RequestAttributes {
                    verb: "get".to_owned(),
                    ..Default::default()
                }),
                "attributes.target is required",
            ),
            (
                POLICY.to_owned(),
                Some(resource("get", "apps", "", "")),
                "attributes.resource.resource is required",
            ),
            (
                POLICY.to_owned(),
                Some(non_resource("get", "")),
                "attributes.non_resource.path is required",
            ),
            (
                format!("{POLICY}{}", "#".repeat(convert::MAX_POLICY_BYTES)),
                Some(resource("get", "", "pods", "")),
                "at most 1048576 bytes",
            ),
        ];
        for (policy, attributes, expected) in cases {
            let message = invalid_argument(evaluate(&policy, attributes).await);
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }

    #[tokio::test]
    async fn generates_each_profile_and_refuses_bad_extra_resources() {
        let service = Provisioner::default();
        let generated = service
            .generate_policy(Request::new(v1::GeneratePolicyRequest {
                profile: v1::PolicyProfile::Extended.into(),
                extra_resources: vec![v1::GroupResource {
                    group: "apps".to_owned(),
                    resource: "deployments".to_owned(),
                }],
                api_version: v1::AuditApiVersion::V1beta1.into(),
            }))
            .await
            .expect("generated")
            .into_inner();
        assert!(
            generated
                .policy_yaml
                .starts_with("apiVersion: audit.k8s.io/v1beta1\n")
        );
        assert!(generated.policy_yaml.contains("- deployments\n"));
        assert_eq!(generated.warnings.len(), 1, "{:?}", generated.warnings);
        // What is generated validates and lints clean apart from v1beta1.
        let report = validate(&generated.policy_yaml).await.expect("answered");
        assert!(report.valid);
        assert_eq!(codes(&report), vec!["deprecated-api-version"]);
        let message = invalid_argument(
            service
                .generate_policy(Request::new(v1::GeneratePolicyRequest {
                    extra_resources: vec![
                        v1::GroupResource {
                            group: "apps".to_owned(),
                            resource: "deployments".to_owned(),
                        },
                        v1::GroupResource {
                            group: "apps".to_owned(),
                            resource: String::new(),
                        },
                    ],
                    ..Default::default()
                }))
                .await,
        );
        assert_eq!(
            message,
            "extra_resources[1]: extra resource \"apps/\": the resource name is empty"
        );
    }

    #[tokio::test]
    async fn validation_reports_the_compliance_lint() {
        let policy = format!(
            "{HEADER}rules:\n- level: Request\n- level: Metadata\n  resources:\n  - group: \"\"\n    resources: [pods]\n"
        );
        let response = validate(&policy).await.expect("answered");
        assert!(response.valid);
        assert_eq!(
            response
                .findings
                .iter()
                .map(|f| (f.rule_index, f.code.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (Some(0), "compliance-writes-not-captured"),
                (Some(0), "compliance-writes-not-captured"),
                (Some(0), "compliance-writes-not-captured"),
                (Some(0), "compliance-writes-not-captured"),
                (Some(0), "compliance-writes-not-captured"),
                (Some(0), "compliance-writes-not-captured"),
                (Some(0), "request-received-not-omitted"),
                (Some(0), "secrets-logged"),
                (Some(1), "request-received-not-omitted"),
                (Some(1), "shadowed-rule"),
            ]
        );
        assert!(
            response
                .findings
                .iter()
                .all(|f| f.severity() == v1::LintSeverity::Warning)
        );
    }

    async fn render(
        platform: v1::Platform,
        options: Option<v1::SetupOptions>,
    ) -> Result<v1::RenderSetupResponse, Status> {
        Provisioner::default()
            .render_setup(Request::new(v1::RenderSetupRequest {
                platform: platform.into(),
                options,
            }))
            .await
            .map(Response::into_inner)
    }

    #[tokio::test]
    async fn renders_platforms_with_the_documented_codes() {
        let onprem = render(v1::Platform::Onprem, None).await.expect("rendered");
        assert_eq!(
            onprem
                .artifacts
                .iter()
                .map(|a| (a.name.as_str(), a.kind()))
                .collect::<Vec<_>>(),
            vec![
                ("audit-policy.yaml", v1::ArtifactKind::AuditPolicy),
                ("kube-apiserver-flags.txt", v1::ArtifactKind::ApiserverFlags),
                (
                    "kube-apiserver-patch.yaml",
                    v1::ArtifactKind::ApiserverFlags
                ),
                (
                    "audit-policy-configmap.yaml",
                    v1::ArtifactKind::KubernetesManifest
                ),
            ]
        );
        let openshift = render(v1::Platform::Openshift, None)
            .await
            .expect_err("refused");
        assert_eq!(openshift.code(), Code::FailedPrecondition);
        assert!(
            openshift
                .message()
                .starts_with("OpenShift is not supported: ")
        );
        let message = invalid_argument(render(v1::Platform::Unspecified, None).await);
        assert!(message.starts_with("platform is required"), "{message}");
        let message = invalid_argument(render(v1::Platform::Eks, None).await);
        assert!(message.contains("cluster name and region"), "{message}");
        let eks = v1::SetupOptions {
            eks: Some(v1::EksOptions {
                cluster_name: "prod".to_owned(),
                region: "us-east-1".to_owned(),
                aws_access_key_id: "AKID".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let message = invalid_argument(render(v1::Platform::Eks, Some(eks)).await);
        assert!(message.contains("give both"), "{message}");
    }

    #[tokio::test]
    async fn apply_needs_artifacts_and_skips_what_is_not_a_manifest() {
        let service = Provisioner::default();
        let message = invalid_argument(
            service
                .apply_setup(Request::new(v1::ApplySetupRequest::default()))
                .await,
        );
        assert!(message.starts_with("artifacts is required"), "{message}");
        let flags = v1::Artifact {
            name: "kube-apiserver-flags.txt".to_owned(),
            kind: v1::ArtifactKind::ApiserverFlags.into(),
            content: "--audit-log-path=/x\n".to_owned(),
            ..Default::default()
        };
        // No manifest: answered without a cluster.
        let response = service
            .apply_setup(Request::new(v1::ApplySetupRequest {
                artifacts: vec![flags],
                dry_run: true,
                ..Default::default()
            }))
            .await
            .expect("nothing to apply")
            .into_inner();
        assert_eq!(
            response,
            v1::ApplySetupResponse {
                objects: Vec::new(),
                skipped_artifacts: vec!["kube-apiserver-flags.txt".to_owned()],
                dry_run: true,
            }
        );
    }

    #[tokio::test]
    async fn apply_refused_by_the_cluster_is_permission_denied() {
        // A mock Kubernetes API that refuses every request as RBAC would.
        let forbidding_api_mock = tower::service_fn(
            |_request: http::Request<kube::client::Body>| async {
                let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"configmaps \"auditrail-audit-policy\" is forbidden","reason":"Forbidden","code":403}"#;
                let mut response =
                    http::Response::new(kube::client::Body::from(body.as_bytes().to_vec()));
                *response.status_mut() = http::StatusCode::FORBIDDEN;
                Ok::<_, std::convert::Infallible>(response)
            },
        );
        let service =
            Provisioner::with_kube_client(kube::Client::new(forbidding_api_mock, "default"));
        let rendered = render(v1::Platform::Onprem, None).await.expect("rendered");
        let status = service
            .apply_setup(Request::new(v1::ApplySetupRequest {
                artifacts: rendered.artifacts,
                ..Default::default()
            }))
            .await
            .expect_err("forbidden");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert!(
            status.message().contains("is forbidden"),
            "{}",
            status.message()
        );
    }
}

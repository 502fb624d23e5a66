//! `auditrail policy generate|validate|evaluate` and `auditrail setup
//! render|apply`: the provisioner from the command line.
//!
//! Without `--server` the work is done in this process by the provisioner
//! service's own code (`auditrail_provisioner::Provisioner`, called
//! directly, not over a socket), so no server is needed, nothing (not the
//! AWS secret key either) leaves the machine, and the output is the same as
//! a provisioner server's, errors included. `setup apply` then writes with
//! the user's kubeconfig (its current context, or `--context`), as kubectl
//! does. With `--server` the same requests go to that provisioner, and
//! `setup apply` writes with the server's identity.
//!
//! Every command prints text for people by default and JSON or YAML with
//! `-o`. Sensitive artifacts (the EKS Secret) are never printed; `--out-dir`
//! writes them to files only the user can read.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use auditrail_proto::v1;
use auditrail_proto::v1::provision_service_client::ProvisionServiceClient;
use auditrail_proto::v1::provision_service_server::ProvisionService as _;
use serde::Serialize;

use crate::output::{Format, print_document};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProfileArg {
    /// Writes to network policies, pods, namespaces, service accounts and
    /// endpoints at RequestResponse; nothing else.
    NetworkPolicy,
    /// The Calico API server's policy: writes to the nine Calico kinds.
    Calico,
    /// network-policy plus a security team's baseline (GKE-like).
    Extended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ApiVersionArg {
    /// audit.k8s.io/v1.
    V1,
    /// audit.k8s.io/v1beta1 (removed in Kubernetes 1.24).
    V1beta1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PlatformArg {
    /// On premises / kubeadm: kube-apiserver flags and its static pod.
    Onprem,
    /// Amazon EKS: CloudWatch Logs, the LogCollector and its Secret.
    Eks,
    /// kOps: a cluster spec patch.
    Kops,
    /// Rancher RKE: a cluster.yml patch.
    Rke,
    /// OpenShift: refused (not supported).
    Openshift,
}

/// What the policy is made of: shared by `policy generate` and `setup`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PolicyArgs {
    /// The base rules.
    #[arg(long, value_enum, default_value_t = ProfileArg::NetworkPolicy)]
    profile: ProfileArg,
    /// Also record writes of this resource, as GROUP/RESOURCE (`apps/deployments`;
    /// a bare RESOURCE is the core group). Repeatable.
    #[arg(long = "extra-resource", value_name = "GROUP/RESOURCE")]
    extra_resources: Vec<String>,
    /// The policy's apiVersion.
    #[arg(long, value_enum, default_value_t = ApiVersionArg::V1)]
    api_version: ApiVersionArg,
}

impl PolicyArgs {
    fn profile(&self) -> v1::PolicyProfile {
        match self.profile {
            ProfileArg::NetworkPolicy => v1::PolicyProfile::NetworkPolicy,
            ProfileArg::Calico => v1::PolicyProfile::Calico,
            ProfileArg::Extended => v1::PolicyProfile::Extended,
        }
    }

    fn api_version(&self) -> v1::AuditApiVersion {
        match self.api_version {
            ApiVersionArg::V1 => v1::AuditApiVersion::V1,
            ApiVersionArg::V1beta1 => v1::AuditApiVersion::V1beta1,
        }
    }

    /// The extra resources as the proto has them; the server checks them.
    fn extra_resources(&self) -> Vec<v1::GroupResource> {
        self.extra_resources
            .iter()
            .map(|s| {
                let (group, resource) = s.split_once('/').unwrap_or(("", s));
                v1::GroupResource {
                    group: group.to_owned(),
                    resource: resource.to_owned(),
                }
            })
            .collect()
    }
}

/// `auditrail policy generate`.
#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Output: the policy YAML (text), or the policy and warnings as JSON or YAML.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    output: Format,
}

/// `auditrail policy validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    /// The policy file (YAML or JSON).
    file: PathBuf,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    output: Format,
}

/// `auditrail policy evaluate`.
#[derive(Debug, clap::Args)]
pub(crate) struct EvaluateArgs {
    /// The policy file (YAML or JSON).
    file: PathBuf,
    /// The user making the request.
    #[arg(long, default_value = "")]
    user: String,
    /// A group of the user (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// The verb, e.g. get, create, delete.
    #[arg(long)]
    verb: String,
    /// The resource (plural), e.g. pods.
    #[arg(long, conflicts_with = "path", required_unless_present = "path")]
    resource: Option<String>,
    /// The subresource, e.g. status.
    #[arg(long, default_value = "", requires = "resource")]
    subresource: String,
    /// The namespace; empty for cluster-scoped resources.
    #[arg(long, short = 'n', default_value = "", requires = "resource")]
    namespace: String,
    /// The object's name.
    #[arg(long, default_value = "", requires = "resource")]
    name: String,
    /// The API group; empty for the core group.
    #[arg(long, default_value = "", requires = "resource")]
    api_group: String,
    /// A non-resource URL path instead, e.g. /healthz.
    #[arg(long)]
    path: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    output: Format,
}

/// The set-up options of `setup render` and `setup apply`.
// The field docs are --help text, where `<cluster>` is a placeholder.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, clap::Args)]
pub(crate) struct SetupArgs {
    /// The platform the API server runs on.
    #[arg(long, value_enum)]
    platform: PlatformArg,
    #[command(flatten)]
    policy: PolicyArgs,
    /// --audit-log-path [default: /var/log/calico/audit/kube-audit.log].
    #[arg(long, value_name = "PATH")]
    log_path: Option<String>,
    /// --audit-log-maxage: days to keep rotated files [default: 30].
    #[arg(long, value_name = "DAYS")]
    max_age_days: Option<u32>,
    /// --audit-log-maxbackup: rotated files to keep [default: 10].
    #[arg(long, value_name = "N")]
    max_backups: Option<u32>,
    /// --audit-log-maxsize: megabytes before rotation [default: 100].
    #[arg(long, value_name = "MB")]
    max_size_mb: Option<u32>,
    /// --audit-policy-file on the control-plane nodes [default: per platform].
    #[arg(long, value_name = "PATH")]
    policy_path: Option<String>,
    /// EKS: the cluster's name.
    #[arg(long, value_name = "NAME")]
    eks_cluster: Option<String>,
    /// EKS: the AWS region.
    #[arg(long, value_name = "REGION")]
    eks_region: Option<String>,
    /// EKS: the log group [default: /aws/eks/<cluster>/cluster].
    #[arg(long, value_name = "GROUP")]
    eks_log_group: Option<String>,
    /// EKS: the log stream prefix [default: kube-apiserver-audit-].
    #[arg(long, value_name = "PREFIX")]
    eks_stream_prefix: Option<String>,
    /// EKS: seconds between fetches [default: 60].
    #[arg(long, value_name = "SECONDS")]
    eks_fetch_interval: Option<u32>,
    /// EKS: the log forwarder's AWS access key id (Secret key aws-id).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    aws_access_key_id: Option<String>,
    /// EKS: its secret access key (aws-key); prefer the environment variable.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    aws_secret_access_key: Option<String>,
}

impl SetupArgs {
    fn request(&self) -> v1::RenderSetupRequest {
        let platform = match self.platform {
            PlatformArg::Onprem => v1::Platform::Onprem,
            PlatformArg::Eks => v1::Platform::Eks,
            PlatformArg::Kops => v1::Platform::Kops,
            PlatformArg::Rke => v1::Platform::Rke,
            PlatformArg::Openshift => v1::Platform::Openshift,
        };
        let text = |s: &Option<String>| s.clone().unwrap_or_default();
        let eks = (platform == v1::Platform::Eks).then(|| v1::EksOptions {
            cluster_name: text(&self.eks_cluster),
            region: text(&self.eks_region),
            log_group: text(&self.eks_log_group),
            stream_prefix: text(&self.eks_stream_prefix),
            fetch_interval_seconds: self.eks_fetch_interval,
            aws_access_key_id: text(&self.aws_access_key_id),
            aws_secret_access_key: text(&self.aws_secret_access_key),
        });
        v1::RenderSetupRequest {
            platform: platform.into(),
            options: Some(v1::SetupOptions {
                policy_profile: self.policy.profile().into(),
                extra_resources: self.policy.extra_resources(),
                api_version: self.policy.api_version().into(),
                log_path: text(&self.log_path),
                max_age_days: self.max_age_days,
                max_backups: self.max_backups,
                max_size_mb: self.max_size_mb,
                policy_path: text(&self.policy_path),
                eks,
            }),
        }
    }
}

/// `auditrail setup render`.
#[derive(Debug, clap::Args)]
pub(crate) struct RenderArgs {
    #[command(flatten)]
    setup: SetupArgs,
    /// Also write every artifact to this directory (sensitive ones readable
    /// only by you).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    output: Format,
}

/// `auditrail setup apply`.
#[derive(Debug, clap::Args)]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    setup: SetupArgs,
    /// The kubeconfig context to apply with [default: the current context];
    /// not with --server, which applies with the server's identity.
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Namespace of objects that name none (the policy ConfigMap).
    #[arg(long, short = 'n', default_value = "auditrail")]
    namespace: String,
    /// Ask the API server to check everything and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    output: Format,
}

/// Where the provisioner's work is done.
enum Provisioner {
    /// In this process: the service's own code, no server, no network.
    Local(auditrail_provisioner::Provisioner),
    /// A provisioner server.
    Remote(ProvisionServiceClient<auditrail_server::client::Connection>),
}

/// Calls `$method` on the local service or the remote client, with one
/// error for both: `<Rpc> failed: <message> (<CODE>)`.
macro_rules! call {
    ($provisioner:expr, $method:ident, $rpc:literal, $request:expr) => {{
        let request = $request;
        let result = match $provisioner {
            Provisioner::Local(service) => service.$method(tonic::Request::new(request)).await,
            Provisioner::Remote(client) => client.$method(request).await,
        };
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| crate::error::rpc($rpc, &status))
    }};
}

impl Provisioner {
    /// `server`'s provisioner, or this process's.
    async fn new(server: Option<&str>) -> anyhow::Result<Self> {
        Self::with(server, auditrail_provisioner::Provisioner::default).await
    }

    /// `server`'s provisioner, or `local()`.
    async fn with(
        server: Option<&str>,
        local: impl FnOnce() -> auditrail_provisioner::Provisioner,
    ) -> anyhow::Result<Self> {
        Ok(match server {
            Some(server) => {
                Self::Remote(ProvisionServiceClient::new(crate::connect(server).await?))
            }
            None => Self::Local(local()),
        })
    }
}

fn read_policy(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

#[derive(Serialize)]
struct Generated {
    policy: serde_json::Value,
    warnings: Vec<String>,
}

/// Prints a generated policy; warnings go to stderr in text mode.
pub(crate) async fn generate(server: Option<&str>, args: GenerateArgs) -> anyhow::Result<()> {
    let mut provisioner = Provisioner::new(server).await?;
    let response = call!(
        &mut provisioner,
        generate_policy,
        "GeneratePolicy",
        v1::GeneratePolicyRequest {
            profile: args.policy.profile().into(),
            extra_resources: args.policy.extra_resources(),
            api_version: args.policy.api_version().into(),
        }
    )?;
    if args.output == Format::Text {
        for warning in &response.warnings {
            eprintln!("warning: {warning}");
        }
        print!("{}", response.policy_yaml);
        return Ok(());
    }
    let policy =
        serde_norway::from_str(&response.policy_yaml).context("the server's policy is not YAML")?;
    print_document(
        args.output,
        &Generated {
            policy,
            warnings: response.warnings,
        },
    )
}

#[derive(Serialize)]
struct Validation {
    valid: bool,
    errors: Vec<ValidationError>,
    findings: Vec<ValidationFinding>,
}

#[derive(Serialize)]
struct ValidationError {
    field: String,
    message: String,
}

#[derive(Serialize)]
struct ValidationFinding {
    severity: &'static str,
    rule: Option<u32>,
    code: String,
    message: String,
}

/// Prints the API server's errors and the lint's findings; fails when the
/// policy is not valid.
pub(crate) async fn validate(server: Option<&str>, args: ValidateArgs) -> anyhow::Result<()> {
    let policy_yaml = read_policy(&args.file)?;
    let mut provisioner = Provisioner::new(server).await?;
    let response = call!(
        &mut provisioner,
        validate_policy,
        "ValidatePolicy",
        v1::ValidatePolicyRequest { policy_yaml }
    )?;
    let report = Validation {
        valid: response.valid,
        errors: response
            .errors
            .iter()
            .map(|e| ValidationError {
                field: e.field.clone(),
                message: e.message.clone(),
            })
            .collect(),
        findings: response
            .findings
            .iter()
            .map(|f| ValidationFinding {
                severity: match f.severity() {
                    v1::LintSeverity::Info => "info",
                    _ => "warning",
                },
                rule: f.rule_index,
                code: f.code.clone(),
                message: f.message.clone(),
            })
            .collect(),
    };
    if args.output == Format::Text {
        for e in &report.errors {
            if e.field.is_empty() {
                println!("error: {}", e.message);
            } else {
                println!("error: {}: {}", e.field, e.message);
            }
        }
        for f in &report.findings {
            let rule = f.rule.map(|i| format!(" rule {i}")).unwrap_or_default();
            println!("{}[{}]{rule}: {}", f.severity, f.code, f.message);
        }
        if report.valid {
            println!(
                "{}: valid, {} finding(s)",
                args.file.display(),
                report.findings.len()
            );
        }
    } else {
        print_document(args.output, &report)?;
    }
    if !report.valid {
        bail!(
            "{} is not a valid audit policy ({} error(s))",
            args.file.display(),
            report.errors.len()
        );
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Evaluation {
    level: String,
    omit_stages: Vec<String>,
    rule: Option<u32>,
}

/// Prints how the policy audits one request: level, omitted stages and the
/// rule that decided (with its text).
pub(crate) async fn evaluate(server: Option<&str>, args: EvaluateArgs) -> anyhow::Result<()> {
    let policy_yaml = read_policy(&args.file)?;
    let target = match (&args.resource, &args.path) {
        (Some(resource), _) => v1::request_attributes::Target::Resource(v1::ResourceAttributes {
            api_group: args.api_group.clone(),
            resource: resource.clone(),
            subresource: args.subresource.clone(),
            namespace: args.namespace.clone(),
            name: args.name.clone(),
        }),
        (None, Some(path)) => {
            v1::request_attributes::Target::NonResource(v1::NonResourceAttributes {
                path: path.clone(),
            })
        }
        (None, None) => bail!("give --resource or --path"),
    };
    let mut provisioner = Provisioner::new(server).await?;
    let response = call!(
        &mut provisioner,
        evaluate_policy,
        "EvaluatePolicy",
        v1::EvaluatePolicyRequest {
            policy_yaml: policy_yaml.clone(),
            attributes: Some(v1::RequestAttributes {
                user: args.user.clone(),
                groups: args.groups.clone(),
                verb: args.verb.clone(),
                target: Some(target),
            }),
        }
    )?;
    let evaluation = Evaluation {
        level: response.level,
        omit_stages: response.omit_stages,
        rule: response.matched_rule_index,
    };
    if args.output != Format::Text {
        return print_document(args.output, &evaluation);
    }
    println!("level: {}", evaluation.level);
    println!(
        "omit stages: {}",
        if evaluation.omit_stages.is_empty() {
            "none".to_owned()
        } else {
            evaluation.omit_stages.join(", ")
        }
    );
    match evaluation.rule {
        None => println!("rule: none matched"),
        Some(index) => {
            println!("rule: {index}");
            // The server validated the policy, so it loads here too.
            let rule = auditrail_policy::Policy::from_yaml(&policy_yaml)
                .ok()
                .and_then(|p| {
                    usize::try_from(index)
                        .ok()
                        .and_then(|i| p.rules.get(i).cloned())
                })
                .and_then(|r| serde_norway::to_string(&r).ok());
            if let Some(rule) = rule {
                for line in rule.lines() {
                    println!("  {line}");
                }
            }
        }
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rendered {
    artifacts: Vec<RenderedArtifact>,
    notes: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RenderedArtifact {
    name: String,
    media_type: String,
    kind: String,
    description: String,
    sensitive: bool,
    /// Left out for sensitive artifacts.
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
}

fn kind_name(kind: v1::ArtifactKind) -> String {
    kind.as_str_name()
        .trim_start_matches("ARTIFACT_KIND_")
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// Prints (and with `--out-dir` writes) a platform's set-up.
pub(crate) async fn render(server: Option<&str>, args: RenderArgs) -> anyhow::Result<()> {
    let mut provisioner = Provisioner::new(server).await?;
    let response = call!(
        &mut provisioner,
        render_setup,
        "RenderSetup",
        args.setup.request()
    )?;
    if let Some(dir) = &args.out_dir {
        write_artifacts(dir, &response.artifacts)?;
    }
    let rendered = Rendered {
        artifacts: response
            .artifacts
            .iter()
            .map(|a| RenderedArtifact {
                name: a.name.clone(),
                media_type: a.media_type.clone(),
                kind: kind_name(a.kind()),
                description: a.description.clone(),
                sensitive: a.sensitive,
                content: (!a.sensitive).then(|| a.content.clone()),
            })
            .collect(),
        notes: response.notes,
    };
    if args.output != Format::Text {
        return print_document(args.output, &rendered);
    }
    for a in &rendered.artifacts {
        println!("# {} ({}): {}", a.name, a.kind, a.description);
        match &a.content {
            Some(content) => print!("{content}"),
            None => println!(
                "# (sensitive: not printed{})",
                if args.out_dir.is_some() {
                    "; written to the output directory"
                } else {
                    "; use --out-dir to write it"
                }
            ),
        }
        println!();
    }
    for note in &rendered.notes {
        println!("note: {note}");
    }
    Ok(())
}

fn write_artifacts(dir: &Path, artifacts: &[v1::Artifact]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for a in artifacts {
        // The server names the files; never let a name leave the directory.
        let name = Path::new(&a.name)
            .file_name()
            .filter(|n| n.to_str() == Some(a.name.as_str()))
            .with_context(|| format!("artifact name {:?} is not a file name", a.name))?;
        let path = dir.join(name);
        let mode = if a.sensitive { 0o600 } else { 0o644 };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.write_all(a.content.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Applied {
    dry_run: bool,
    objects: Vec<AppliedObject>,
    skipped_artifacts: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AppliedObject {
    api_version: String,
    kind: String,
    namespace: String,
    name: String,
    action: String,
}

/// Renders the set-up and applies its Kubernetes objects: with the user's
/// kubeconfig, or through the server with its identity.
pub(crate) async fn apply(server: Option<&str>, args: ApplyArgs) -> anyhow::Result<()> {
    if let (Some(server), Some(context)) = (server, &args.context) {
        bail!(
            "--context {context:?} names a context of your kubeconfig, but --server {server} applies with the server's own identity; leave out one of them"
        );
    }
    let context = args.context.clone();
    let mut provisioner = Provisioner::with(server, move || match context {
        Some(context) => auditrail_provisioner::Provisioner::with_kube_context(context),
        None => auditrail_provisioner::Provisioner::default(),
    })
    .await?;
    let rendered = call!(
        &mut provisioner,
        render_setup,
        "RenderSetup",
        args.setup.request()
    )?;
    let response = call!(
        &mut provisioner,
        apply_setup,
        "ApplySetup",
        v1::ApplySetupRequest {
            artifacts: rendered.artifacts,
            namespace: args.namespace.clone(),
            dry_run: args.dry_run,
        }
    )?;
    let applied = Applied {
        dry_run: response.dry_run,
        objects: response
            .objects
            .iter()
            .map(|o| AppliedObject {
                api_version: o.api_version.clone(),
                kind: o.kind.clone(),
                namespace: o.namespace.clone(),
                name: o.name.clone(),
                action: o
                    .action()
                    .as_str_name()
                    .trim_start_matches("APPLY_ACTION_")
                    .to_ascii_lowercase(),
            })
            .collect(),
        skipped_artifacts: response.skipped_artifacts,
    };
    if args.output != Format::Text {
        return print_document(args.output, &applied);
    }
    let suffix = if applied.dry_run { " (dry run)" } else { "" };
    for o in &applied.objects {
        let at = if o.namespace.is_empty() {
            o.name.clone()
        } else {
            format!("{}/{}", o.namespace, o.name)
        };
        println!("{} {} {at}{suffix}", o.kind, o.action);
    }
    if !applied.skipped_artifacts.is_empty() {
        println!(
            "not applied (not Kubernetes objects; see `auditrail setup render`): {}",
            applied.skipped_artifacts.join(", ")
        );
    }
    Ok(())
}

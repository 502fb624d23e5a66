//! The flags of a process, each declared once, and how they override the
//! configuration: through `Overrides`, a typed value in the shape of
//! [`NodeConfig`](crate::NodeConfig) whose absent flags serialize to
//! nothing, so no key is spelt as a string.
//!
//! A flag that configures a service the process does not run (`--cluster`
//! with `--service query`) is refused: it would be silently ignored.

use std::net::SocketAddr;
use std::path::PathBuf;

use auditrail_ingestor::{CloudWatchSource, FileSource, SourceArgs};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command};
use serde::Serialize;

use crate::ComposeError;
use crate::table::{Selection, ServiceName};

/// The flags every process takes; each can also be set in the file
/// (`--config`) or an `AUDITRAIL_*` environment variable.
#[derive(Debug, Clone, Default, Args)]
pub struct NodeArgs {
    /// TOML configuration file, with the tables server, log, otlp, store,
    /// ingestor, indexer, query, provisioner, reporter and console.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit 0, or
    /// print what is wrong with it and exit 1.
    #[arg(long)]
    pub check_config: bool,
    /// Directory of everything the process keeps: the embedded store in
    /// store/, the ingestor's checkpoints in ingestor/, reports in
    /// reports/ [default: ./auditrail-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address the gRPC API listens on [default: 127.0.0.1:50051; one
    /// service alone: its own port, ingestor 50053, indexer 50054, query
    /// 50055, provisioner 50052, reporter 50056, console 50057].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Address of the Prometheus `/metrics` endpoint [default:
    /// 127.0.0.1:9464; one service alone: ingestor 9466, indexer 9467,
    /// query 9468, provisioner 9465, reporter 9469, console 9470].
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Turns the Prometheus endpoint off.
    #[arg(long, conflicts_with = "metrics_listen")]
    pub no_metrics: bool,
    /// PEM certificate chain of the gRPC API's TLS, re-read when the file
    /// changes [default: none; without TLS the API listens only on
    /// loopback].
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates of client certificates: every client must
    /// present one it signed (mTLS) [default: none].
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve the gRPC API without TLS on a non-loopback `--listen` address
    /// (a warning is logged every minute) [default: refused].
    #[arg(long)]
    pub insecure_listen: bool,
    /// Who may call what.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Where access records go.
    #[command(flatten)]
    pub access_log: AccessLogArgs,
    /// Log filter, in `tracing` EnvFilter syntax (e.g.
    /// `info,auditrail=debug`) [default: info].
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log format: `text` for people, `json` for log pipelines [default:
    /// text].
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    /// OTLP/gRPC endpoint to export traces to (e.g.
    /// `http://127.0.0.1:4317`) [default: none, no export].
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Indexer and query: store in (search) Elasticsearch at this URL
    /// (repeatable for several nodes) instead of the embedded store.
    #[arg(long = "elasticsearch-url", value_name = "URL")]
    pub elasticsearch_urls: Vec<String>,
    /// Indexer: keep events this many days; older ones are not stored,
    /// stored ones are deleted once older (0: keep forever) [default: 91].
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<u32>,
    /// Ingestor and reporter: name of the cluster whose audit logs are
    /// collected, and that reports replay by default [default: cluster].
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Ingestor: gRPC address of the indexer, when the indexer runs in
    /// another process [default: http://127.0.0.1:50054].
    #[arg(long, value_name = "URL")]
    pub indexer_url: Option<String>,
    /// Console: address its pages and JSON API listen on [default:
    /// 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub console_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub sources: SourceArgs,
}

/// The access-control flags (`[server.auth]`).
#[derive(Debug, Clone, Default, Args)]
pub struct AuthArgs {
    /// Bearer tokens the API accepts: TOML `[[token]]` entries of name,
    /// SHA-256 of the token and groups, re-read when the file changes
    /// [default: none; with neither this nor --tls-client-ca every caller
    /// may do everything].
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// Roles and bindings beyond the built-in viewer, exporter, ingestor
    /// and admin (TOML), re-read when the file changes [default: none].
    #[arg(long, value_name = "FILE")]
    pub authz_file: Option<PathBuf>,
    /// Bearer tokens not in the token file are reviewed by the Kubernetes
    /// API (TokenReview; in-cluster or kubeconfig), cached 60 s
    /// [default: off].
    #[arg(long)]
    pub auth_kubernetes: bool,
    /// Permissions are reviewed by Kubernetes RBAC (SubjectAccessReview on
    /// `auditrail.io` resources) instead of the roles [default: off].
    #[arg(long)]
    pub authz_kubernetes: bool,
}

/// The access-record flags (`[server.access_log]`).
#[derive(Debug, Clone, Default, Args)]
pub struct AccessLogArgs {
    /// Query, provisioner and reporter without an indexer in the same
    /// process: the indexer that stores the access records of their calls
    /// (its TLS and token in `[server.access_log.client]`) [default: none;
    /// such a process does not start without it or --no-access-log].
    #[arg(long, value_name = "URL")]
    pub access_log_indexer_url: Option<String>,
    /// Do not record the calls that read or change the trail (logged at
    /// WARN at start) [default: recorded].
    #[arg(long, conflicts_with = "access_log_indexer_url")]
    pub no_access_log: bool,
}

/// Which services each service-specific flag configures (by clap id).
/// Flags not listed configure the process itself.
fn owners(id: &str) -> Option<&'static [ServiceName]> {
    use ServiceName::{Console, Indexer, Ingestor, Provisioner, Query, Reporter};
    match id {
        "data_dir" => Some(&[Ingestor, Indexer, Query, Reporter]),
        "elasticsearch_urls" => Some(&[Indexer, Query]),
        "retention_days" => Some(&[Indexer]),
        "cluster" => Some(&[Ingestor, Reporter]),
        "indexer_url" => Some(&[Ingestor]),
        "console_listen" => Some(&[Console]),
        "access_log_indexer_url" => Some(&[Query, Provisioner, Reporter]),
        _ if source_ids().iter().any(|s| s == id) => Some(&[Ingestor]),
        _ => None,
    }
}

/// The clap ids of the ingestor's source flags.
fn source_ids() -> Vec<String> {
    SourceArgs::augment_args(Command::new("sources"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect()
}

impl NodeArgs {
    /// Refuses a flag given on the command line for a service that
    /// `selection` does not run.
    pub(crate) fn check_owners(
        matches: &ArgMatches,
        selection: &Selection,
    ) -> Result<(), ComposeError> {
        for id in matches.ids() {
            let id = id.as_str();
            if matches.value_source(id) != Some(ValueSource::CommandLine) {
                continue;
            }
            let Some(owners) = owners(id) else { continue };
            if !owners.iter().any(|s| selection.contains(s)) {
                let names: Vec<_> = owners.iter().map(|s| s.as_str()).collect();
                return Err(ComposeError::FlagNotUsed {
                    flag: format!("--{}", id.replace('_', "-")),
                    services: names.join(" or "),
                    selection: selection.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The configuration the flags set, in the configuration's shape.
    pub(crate) fn overrides(&self, matches: &ArgMatches) -> Result<Overrides, ComposeError> {
        let sources = self.sources.sources(matches).map_err(ComposeError::Flags)?;
        Ok(Overrides {
            data_dir: self.data_dir.clone(),
            server: ServerFlags {
                listen: self.listen,
                metrics_listen: self.metrics_listen,
                metrics: self.no_metrics.then_some(false),
                tls: self.tls_cert.as_ref().map(|cert| TlsFlags {
                    cert: cert.clone(),
                    key: self.tls_key.clone().unwrap_or_default(),
                    client_ca: self.tls_client_ca.clone(),
                }),
                insecure_listen: self.insecure_listen.then_some(true),
                auth: AuthFlags {
                    token_file: self.auth.auth_token_file.clone(),
                    roles_file: self.auth.authz_file.clone(),
                    kubernetes_tokens: self.auth.auth_kubernetes.then_some(true),
                    kubernetes_authorization: self.auth.authz_kubernetes.then_some(true),
                },
                access_log: AccessLogFlags {
                    enabled: self.access_log.no_access_log.then_some(false),
                    indexer_url: self.access_log.access_log_indexer_url.clone(),
                },
            },
            log: LogFlags {
                level: self.log_level.clone(),
                format: self.log_format.clone(),
            },
            otlp: OtlpFlags {
                endpoint: self.otlp_endpoint.clone(),
            },
            store: StoreFlags {
                elasticsearch: (!self.elasticsearch_urls.is_empty()).then(|| ElasticFlags {
                    urls: self.elasticsearch_urls.clone(),
                }),
            },
            ingestor: IngestorFlags {
                cluster: self.cluster.clone(),
                indexer_url: self.indexer_url.clone(),
                sources,
                cloudwatch: self.sources.cloudwatch(),
                start_at: self.sources.start_at.clone(),
            },
            indexer: IndexerFlags {
                retention_days: self.retention_days,
            },
            reporter: ReporterFlags {
                default_cluster: self.cluster.clone(),
            },
            console: ConsoleFlags {
                listen: self.console_listen.map(|a| a.to_string()),
            },
        })
    }
}

/// What the flags set; `None` leaves the lower layers in force.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    server: ServerFlags,
    log: LogFlags,
    otlp: OtlpFlags,
    store: StoreFlags,
    ingestor: IngestorFlags,
    indexer: IndexerFlags,
    reporter: ReporterFlags,
    console: ConsoleFlags,
}

#[derive(Debug, Default, Serialize)]
struct ConsoleFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct ReporterFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    default_cluster: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct ServerFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TlsFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    insecure_listen: Option<bool>,
    #[serde(skip_serializing_if = "AuthFlags::is_empty")]
    auth: AuthFlags,
    #[serde(skip_serializing_if = "AccessLogFlags::is_empty")]
    access_log: AccessLogFlags,
}

#[derive(Debug, Default, Serialize)]
struct AccessLogFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    indexer_url: Option<String>,
}

impl AccessLogFlags {
    fn is_empty(&self) -> bool {
        self.enabled.is_none() && self.indexer_url.is_none()
    }
}

#[derive(Debug, Default, Serialize)]
struct AuthFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    token_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kubernetes_tokens: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kubernetes_authorization: Option<bool>,
}

impl AuthFlags {
    fn is_empty(&self) -> bool {
        self.token_file.is_none()
            && self.roles_file.is_none()
            && self.kubernetes_tokens.is_none()
            && self.kubernetes_authorization.is_none()
    }
}

/// `--tls-cert` and `--tls-key` come together (clap checks it), so they
/// set the whole `[server.tls]` table.
#[derive(Debug, Default, Serialize)]
struct TlsFlags {
    cert: PathBuf,
    key: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ca: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize)]
struct LogFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct OtlpFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct StoreFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    elasticsearch: Option<ElasticFlags>,
}

#[derive(Debug, Default, Serialize)]
struct ElasticFlags {
    urls: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
struct IngestorFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    indexer_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sources: Option<Vec<FileSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloudwatch: Option<Vec<CloudWatchSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_at: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct IndexerFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_days: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory as _, FromArgMatches as _, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        node: NodeArgs,
    }

    fn parse(args: &[&str]) -> (NodeArgs, ArgMatches) {
        let matches = Cli::command()
            .try_get_matches_from(std::iter::once("x").chain(args.iter().copied()))
            .unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        (cli.node, matches)
    }

    /// The defaults the help states are the ports table's, so the two
    /// cannot drift apart.
    #[test]
    fn the_help_names_the_default_ports() {
        use auditrail_server::ports;
        let help = |id: &str| {
            Cli::command()
                .get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_help().map(ToString::to_string))
                .unwrap_or_default()
                .replace('\n', " ")
        };
        let (listen, metrics) = (help("listen"), help("metrics_listen"));
        assert!(
            listen.contains(&format!("127.0.0.1:{}", ports::ALL_IN_ONE.grpc)),
            "{listen}"
        );
        assert!(
            metrics.contains(&format!("127.0.0.1:{}", ports::ALL_IN_ONE.metrics)),
            "{metrics}"
        );
        for (name, p) in [
            ("ingestor", ports::INGESTOR),
            ("indexer", ports::INDEXER),
            ("query", ports::QUERY),
            ("provisioner", ports::PROVISIONER),
            ("reporter", ports::REPORTER),
            ("console", ports::CONSOLE),
        ] {
            assert!(
                listen.contains(&format!("{name} {}", p.grpc)),
                "{name}: {listen}"
            );
            assert!(
                metrics.contains(&format!("{name} {}", p.metrics)),
                "{name}: {metrics}"
            );
        }
        let indexer_url = help("indexer_url");
        assert!(
            indexer_url.contains(&ports::local_url(ports::INDEXER)),
            "{indexer_url}"
        );
    }

    #[test]
    fn flags_for_services_not_run_are_refused() {
        let (_, matches) = parse(&["--cluster", "prod", "--log-level", "debug"]);
        let query = Selection::one(ServiceName::Query);
        let err = NodeArgs::check_owners(&matches, &query)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--cluster"), "{err}");
        assert!(err.contains("ingestor"), "{err}");
        assert!(NodeArgs::check_owners(&matches, &Selection::all()).is_ok());

        let (_, matches) = parse(&["--log-path", "/var/log/a.log"]);
        let err = NodeArgs::check_owners(&matches, &Selection::one(ServiceName::Indexer))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--log-path"), "{err}");

        let (_, matches) = parse(&["--elasticsearch-url", "http://es:9200"]);
        assert!(NodeArgs::check_owners(&matches, &query).is_ok());
    }

    #[test]
    fn absent_flags_set_nothing() {
        let (args, matches) = parse(&[]);
        let overrides = args.overrides(&matches).unwrap();
        let value = toml::Value::try_from(&overrides).unwrap();
        let set: Vec<_> = value
            .as_table()
            .unwrap()
            .iter()
            .filter(|(_, v)| v.as_table().is_none_or(|t| !t.is_empty()))
            .map(|(k, _)| k.clone())
            .collect();
        assert!(set.is_empty(), "{set:?}");

        let (args, matches) = parse(&["--retention-days", "7", "--no-metrics"]);
        let value = toml::Value::try_from(args.overrides(&matches).unwrap()).unwrap();
        assert_eq!(value["indexer"]["retention_days"].as_integer(), Some(7));
        assert_eq!(value["server"]["metrics"].as_bool(), Some(false));
    }

    #[test]
    fn tls_flags_set_the_server_tls_table() {
        let (args, matches) = parse(&[
            "--tls-cert",
            "/tls/tls.crt",
            "--tls-key",
            "/tls/tls.key",
            "--tls-client-ca",
            "/tls/ca.crt",
            "--insecure-listen",
            "--auth-token-file",
            "/auth/tokens.toml",
            "--authz-file",
            "/auth/roles.toml",
        ]);
        let value = toml::Value::try_from(args.overrides(&matches).unwrap()).unwrap();
        let tls = &value["server"]["tls"];
        assert_eq!(tls["cert"].as_str(), Some("/tls/tls.crt"));
        assert_eq!(tls["key"].as_str(), Some("/tls/tls.key"));
        assert_eq!(tls["client_ca"].as_str(), Some("/tls/ca.crt"));
        assert_eq!(value["server"]["insecure_listen"].as_bool(), Some(true));
        let auth = &value["server"]["auth"];
        assert_eq!(auth["token_file"].as_str(), Some("/auth/tokens.toml"));
        assert_eq!(auth["roles_file"].as_str(), Some("/auth/roles.toml"));
        let err = Cli::command()
            .try_get_matches_from(["x", "--tls-cert", "/tls/tls.crt"])
            .expect_err("a certificate without its key");
        assert!(err.to_string().contains("--tls-key"), "{err}");
    }
}

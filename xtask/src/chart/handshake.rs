//! The generated certificates in use, without a cluster: the indexer and
//! the ingestor of the default render are started as processes with the
//! rendered configs (their `/etc/auditrail/…` paths pointed at the
//! rendered Secrets and roles file written to disk, listening on
//! loopback), and
//!
//! - the ingestor's batches are accepted by the indexer: the TLS handshake
//!   of Helm's `genCA`/`genSignedCert` certificates with rustls, the
//!   indexer's client CA, and the roles file binding the ingestor's
//!   certificate identity to `ingestor`;
//! - the same ingestor with the `helm test` pods' certificate is refused
//!   (PERMISSION_DENIED: a valid certificate, not the ingestor's identity);
//! - a client without a certificate does not get through the handshake,
//!   and one with the test certificate reads the indexer's health;
//! - the query service of the render (a container of the indexer's pod,
//!   reading its store) sends the access record of a search to the
//!   indexer over mTLS with its own certificate, which the roles file
//!   binds to `recorder`, and the indexer stores it; the same query
//!   service with the test pods' certificate gets its records refused.
//!
//! The certificates name `localhost`, so the clients dial
//! `https://localhost:PORT` and verify the name as in the cluster.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use auditrail_harness::{ServerProcess, scrape};
use serde_json::Value;

use super::{Obj, Report};

/// Events the ingestor sends.
const EVENTS: u64 = 50;

/// How long the indexer gets to store them (a guard, not a measure).
const DEADLINE: Duration = Duration::from_mins(1);

/// Writes a Secret's data (base64) as files in `dir/<secret>/`.
fn write_secret(objects: &[Obj], name: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    use base64::Engine as _;
    let secret = objects
        .iter()
        .find(|o| o.kind() == "Secret" && o.name() == name)
        .with_context(|| format!("no Secret {name} rendered"))?;
    let out = dir.join(name);
    std::fs::create_dir_all(&out)?;
    for (key, value) in secret.value["data"]
        .as_object()
        .context("a Secret without data")?
    {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or_default())
            .with_context(|| format!("{name}: {key} is not base64"))?;
        std::fs::write(out.join(key), bytes)?;
    }
    Ok(out)
}

fn config(objects: &[Obj], name: &str) -> anyhow::Result<String> {
    objects
        .iter()
        .find(|o| o.kind() == "ConfigMap" && o.name() == name)
        .and_then(|o| o.value["data"]["auditrail.toml"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("no ConfigMap {name} rendered"))
}

/// The rendered config with its mounted paths pointed at `tls` and
/// `roles`, and its data under `data`.
fn localize(config: &str, tls: &Path, roles: &Path, data: &Path, logs: &Path) -> String {
    config
        .replace("/etc/auditrail/tls", &tls.display().to_string())
        .replace("/etc/auditrail/authz", &roles.display().to_string())
        .replace("/var/log/calico/audit", &logs.display().to_string())
        .replace("/var/lib/auditrail", &data.display().to_string())
}

fn gauge(addr: &str, name: &str) -> f64 {
    scrape(addr).ok().map_or(0.0, |m| {
        m.iter()
            .filter(|(k, _)| *k == name || k.starts_with(&format!("{name}{{")))
            .map(|(_, v)| v)
            .sum()
    })
}

/// Polls `name` on `addr` until `done` holds or the deadline passes.
fn wait_for(addr: &str, name: &str, done: impl Fn(f64) -> bool) -> f64 {
    let started = Instant::now();
    loop {
        let value = gauge(addr, name);
        if done(value) || started.elapsed() > DEADLINE {
            return value;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The rendered files on disk.
struct Files {
    dir: PathBuf,
    indexer_tls: PathBuf,
    ingestor_tls: PathBuf,
    query_tls: PathBuf,
    test_tls: PathBuf,
    roles: PathBuf,
    logs: PathBuf,
    ingestor_config: String,
    query_config: String,
}

impl Files {
    fn write(work: &Path, objects: &[Obj]) -> anyhow::Result<Self> {
        let dir = work.join("handshake");
        let tls = |name: &str| write_secret(objects, name, &dir);
        let roles = dir.join("roles");
        std::fs::create_dir_all(&roles)?;
        let roles_map = objects
            .iter()
            .find(|o| o.kind() == "ConfigMap" && o.name() == "ar-roles")
            .context("no ConfigMap ar-roles rendered")?;
        for (key, value) in roles_map.value["data"].as_object().into_iter().flatten() {
            std::fs::write(roles.join(key), value.as_str().unwrap_or_default())?;
        }
        let logs = dir.join("logs");
        crate::gen_logs::write_log(
            &logs.join("kube-audit.log"),
            EVENTS,
            7,
            jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1),
        )?;
        std::fs::write(logs.join("tsee-audit.log"), "")?;
        Ok(Self {
            indexer_tls: tls("ar-indexer-tls")?,
            ingestor_tls: tls("ar-ingestor-tls")?,
            query_tls: tls("ar-query-tls")?,
            test_tls: tls("ar-test-tls")?,
            ingestor_config: config(objects, "ar-ingestor-config")?,
            query_config: config(objects, "ar-query-config")?,
            dir,
            roles,
            logs,
        })
    }

    /// The indexer of the render, on loopback.
    fn start_indexer(&self, binary: &Path, objects: &[Obj]) -> anyhow::Result<ServerProcess> {
        let file = self.dir.join("indexer.toml");
        std::fs::write(
            &file,
            localize(
                &config(objects, "ar-indexer-config")?,
                &self.indexer_tls,
                &self.roles,
                &self.dir.join("indexer-data"),
                &self.logs,
            ),
        )?;
        let file = file.display().to_string();
        ServerProcess::start(
            binary,
            &["run", "--service", "indexer", "--config", &file],
            &[],
        )
    }

    /// The ingestor of the render, calling `url`, presenting the
    /// certificate and key of `cert_dir` (its CA: its own mount's).
    fn start_ingestor(
        &self,
        binary: &Path,
        url: &str,
        cert_dir: &Path,
        name: &str,
    ) -> anyhow::Result<ServerProcess> {
        let file = self.client_config(
            &self.ingestor_config,
            &self.ingestor_tls,
            &self.dir.join(format!("{name}-data")),
            cert_dir,
            name,
        )?;
        ServerProcess::start(
            binary,
            &[
                "run",
                "--service",
                "ingestor",
                "--config",
                &file,
                "--indexer-url",
                url,
            ],
            &[],
        )
    }

    /// The query service of the render, reading the indexer's store (as in
    /// their shared pod), sending its access records to the indexer at
    /// `url` and presenting the certificate and key of `cert_dir` there.
    fn start_query(
        &self,
        binary: &Path,
        url: &str,
        cert_dir: &Path,
        name: &str,
    ) -> anyhow::Result<ServerProcess> {
        let file = self.client_config(
            &self.query_config,
            &self.query_tls,
            &self.dir.join("indexer-data"),
            cert_dir,
            name,
        )?;
        ServerProcess::start(
            binary,
            &[
                "run",
                "--service",
                "query",
                "--config",
                &file,
                "--access-log-indexer-url",
                url,
            ],
            &[],
        )
    }

    /// The rendered `config` of a client of the indexer, localized, with
    /// the certificate and key of `cert_dir` in place of those of its own
    /// mount `own_tls`, written as `<name>.toml`: the file's path.
    fn client_config(
        &self,
        config: &str,
        own_tls: &Path,
        data: &Path,
        cert_dir: &Path,
        name: &str,
    ) -> anyhow::Result<String> {
        let own = own_tls.display();
        let text = localize(config, own_tls, &self.roles, data, &self.logs)
            .replace(
                &format!("tls_cert = \"{own}/tls.crt\""),
                &format!("tls_cert = \"{}/tls.crt\"", cert_dir.display()),
            )
            .replace(
                &format!("tls_key = \"{own}/tls.key\""),
                &format!("tls_key = \"{}/tls.key\"", cert_dir.display()),
            );
        let file = self.dir.join(format!("{name}.toml"));
        std::fs::write(&file, text)?;
        Ok(file.display().to_string())
    }
}

/// Runs the checks on the default render's objects.
pub(crate) fn check(
    binary: &Path,
    work: &Path,
    objects: &[Obj],
    report: &mut Report,
) -> anyhow::Result<()> {
    let files = Files::write(work, objects)?;
    let indexer = files.start_indexer(binary, objects)?;
    let metrics = indexer
        .metrics_addr()
        .context("the indexer serves no metrics")?
        .to_owned();
    let port = indexer
        .addr()
        .rsplit_once(':')
        .map(|(_, p)| p.to_owned())
        .context("no port in the indexer's address")?;
    let url = format!("https://localhost:{port}");

    // The ingestor, with its own certificate: every event stored.
    let ingestor = files.start_ingestor(binary, &url, &files.ingestor_tls, "ingestor")?;
    #[allow(clippy::cast_precision_loss)]
    let wanted = EVENTS as f64;
    let accepted = wait_for(&metrics, "indexer_events_accepted_total", |v| v >= wanted);
    report.check((accepted - wanted).abs() < f64::EPSILON, || {
        format!(
            "handshake: the indexer accepted {accepted} of the ingestor's {EVENTS} events over \
             mTLS with the generated certificates; ingestor logs:\n{}\nindexer logs:\n{}",
            ingestor.logs().join("\n"),
            indexer.logs().join("\n")
        )
    });
    ingestor.stop()?;

    // The same ingestor with the helm test pods' certificate: refused.
    let impostor = files.start_ingestor(binary, &url, &files.test_tls, "impostor")?;
    let refused = impostor
        .wait_for_log("the refusal", |l| {
            l.contains("PermissionDenied") && l.contains("ar-test may not call")
        })
        .is_ok();
    let denied = gauge(&metrics, "auth_denied_total");
    report.check(denied > 0.0 && refused, || {
        format!(
            "handshake: a batch signed by the test certificate (ar-test) was not refused \
             PERMISSION_DENIED; its logs:\n{}",
            impostor.logs().join("\n")
        )
    });
    impostor.stop()?;
    let after = gauge(&metrics, "indexer_events_accepted_total");
    report.check((after - wanted).abs() < f64::EPSILON, || {
        format!("handshake: the indexer stored {after} events, some from the test certificate")
    });

    clients(binary, &url, &files, report)?;
    recorders(binary, &url, &files, report)?;
    indexer.stop()?;
    Ok(())
}

/// The query service's access records: stored by the indexer when it
/// presents its own certificate, refused with the test pods' one.
fn recorders(binary: &Path, url: &str, files: &Files, report: &mut Report) -> anyhow::Result<()> {
    let ca = files.query_tls.join("ca.crt");
    // One recorded call: a search of the query service (over TLS, the
    // query's certificate naming localhost).
    let search = |query: &ServerProcess| -> anyhow::Result<String> {
        let port = query
            .addr()
            .rsplit_once(':')
            .map(|(_, p)| p.to_owned())
            .context("no port in the query service's address")?;
        let out = Command::new(binary)
            .args([
                "search",
                "--server",
                &format!("https://localhost:{port}"),
                "--tls-ca",
            ])
            .arg(&ca)
            .output()?;
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    };
    let query = files.start_query(binary, url, &files.query_tls, "query")?;
    let metrics = query
        .metrics_addr()
        .context("the query service serves no metrics")?
        .to_owned();
    let answer = search(&query)?;
    let stored = wait_for(&metrics, "access_records_stored_total", |v| v >= 1.0);
    report.check(stored >= 1.0, || {
        format!(
            "handshake: the query service's access records were not stored by the indexer over \
             mTLS with its own certificate (role recorder); search:\n{answer}\nquery logs:\n{}",
            query.logs().join("\n")
        )
    });
    query.stop()?;

    let impostor = files.start_query(binary, url, &files.test_tls, "query-impostor")?;
    let metrics = impostor
        .metrics_addr()
        .context("the query service serves no metrics")?
        .to_owned();
    let answer = search(&impostor)?;
    let failures = wait_for(&metrics, "access_record_write_failures_total", |v| v >= 1.0);
    let stored = gauge(&metrics, "access_records_stored_total");
    let denied = impostor
        .wait_for_log("the refusal of its access records", |l| {
            l.contains("ar-test may not call auditrail.v1.IngestService/RecordAccess")
        })
        .is_ok();
    report.check(failures >= 1.0 && stored < 0.5 && denied, || {
        format!(
            "handshake: the access records of a query service presenting the test certificate \
             (ar-test) were not refused ({failures} failed writes, {stored} stored); \
             search:\n{answer}\nlogs:\n{}",
            impostor.logs().join("\n")
        )
    });
    impostor.stop()?;
    Ok(())
}

/// Plain clients: without a certificate no handshake; with the test pods'
/// one, the indexer's health.
fn clients(binary: &Path, url: &str, files: &Files, report: &mut Report) -> anyhow::Result<()> {
    let ca = files.ingestor_tls.join("ca.crt");
    // (stdout, stdout and stderr)
    let health = |client: Option<&Path>| -> anyhow::Result<(String, String)> {
        let mut cmd = Command::new(binary);
        cmd.args(["health", "-o", "json", "--server", url, "--tls-ca"])
            .arg(&ca);
        if let Some(c) = client {
            cmd.arg("--tls-client-cert")
                .arg(c.join("tls.crt"))
                .arg("--tls-client-key")
                .arg(c.join("tls.key"));
        }
        let out = cmd.output()?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        Ok((stdout, all))
    };
    let serving = |stdout: &str| {
        serde_json::from_str::<Value>(stdout)
            .is_ok_and(|v| v["auditrail.v1.IngestService"] == "SERVING")
    };
    // Under TLS 1.3 the client may see the refusal as the alert
    // (CertificateRequired) or as the connection closing: either way no
    // answer comes.
    let (stdout, without) = health(None)?;
    report.check(
        !serving(&stdout) && (without.contains("CertificateRequired") || without.contains("transport error")),
        || {
            format!(
                "handshake: a client without a certificate was not refused by the handshake: {without}"
            )
        },
    );
    // The process serves the indexer only: the other services are unknown
    // there, so the command's status is not the point, the entry is.
    let (stdout, with) = health(Some(&files.test_tls))?;
    let serving = serving(&stdout);
    report.check(serving, || {
        format!("handshake: the test certificate does not read the indexer's health: {with}")
    });
    Ok(())
}

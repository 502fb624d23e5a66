//! Assertions on the objects the chart renders for one scenario: what a
//! cluster would be given, checked without one.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Obj, Report, SERVICES};

const COMPONENT: &str = "app.kubernetes.io/component";

/// The workloads and their pod specs (Deployment, DaemonSet, StatefulSet).
pub(crate) fn workload_pods(objects: &[Obj]) -> Vec<(&Obj, &Value)> {
    objects
        .iter()
        .filter(|o| matches!(o.kind(), "Deployment" | "DaemonSet" | "StatefulSet"))
        .map(|o| (o, &o.value["spec"]["template"]["spec"]))
        .collect()
}

fn component(obj: &Obj) -> &str {
    let labels = if obj.kind() == "Pod" || obj.kind() == "Service" {
        &obj.value["metadata"]["labels"]
    } else {
        &obj.value["spec"]["template"]["metadata"]["labels"]
    };
    labels[COMPONENT].as_str().unwrap_or("")
}

fn enabled(values: &Value, service: &str) -> bool {
    values[service]["enabled"].as_bool() != Some(false)
}

fn find<'a>(objects: &'a [Obj], kind: &str, name: &str) -> Option<&'a Obj> {
    objects
        .iter()
        .find(|o| o.kind() == kind && o.name() == name)
}

fn list(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// Every assertion for one scenario.
pub(crate) fn check(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    posture(scenario, objects, report);
    probes(scenario, values, objects, report);
    services(scenario, values, objects, report);
    ingestor(scenario, values, objects, report);
    store(scenario, values, objects, report);
    tls(scenario, values, objects, report);
    access_log(scenario, values, objects, report);
    config_files_mounted(scenario, objects, report);
    kubernetes_access(scenario, values, objects, report);
    tests(scenario, values, objects, report);
    network_policies(scenario, values, objects, report);
    console(scenario, values, objects, report);
    console_forwarding(scenario, values, objects, report);
    reporter(scenario, values, objects, report);
}

/// Every pod: non-root, seccomp RuntimeDefault, no host namespaces; every
/// container: read-only root, no privilege (escalation), all capabilities
/// dropped, CPU and memory requests and limits.
fn posture(scenario: &str, objects: &[Obj], report: &mut Report) {
    let pods = objects.iter().filter_map(|o| match o.kind() {
        "Deployment" | "DaemonSet" | "StatefulSet" => {
            Some((o, &o.value["spec"]["template"]["spec"]))
        }
        "Pod" => Some((o, &o.value["spec"])),
        _ => None,
    });
    for (obj, pod) in pods {
        let at = format!("{scenario}: {}", obj.id());
        let psc = &pod["securityContext"];
        report.check(psc["runAsNonRoot"] == true, || {
            format!("{at}: runAsNonRoot is not true")
        });
        report.check(psc["runAsUser"].as_u64().is_some_and(|u| u > 0), || {
            format!("{at}: runAsUser is root or unset")
        });
        report.check(psc["seccompProfile"]["type"] == "RuntimeDefault", || {
            format!("{at}: seccomp profile is not RuntimeDefault")
        });
        for host in ["hostNetwork", "hostPID", "hostIPC"] {
            report.check(pod[host] != true, || format!("{at}: {host}"));
        }
        for c in list(&pod["containers"])
            .iter()
            .chain(list(&pod["initContainers"]))
        {
            let at = format!("{at} container {}", c["name"]);
            let sc = &c["securityContext"];
            report.check(sc["readOnlyRootFilesystem"] == true, || {
                format!("{at}: writable root filesystem")
            });
            report.check(sc["allowPrivilegeEscalation"] == false, || {
                format!("{at}: privilege escalation allowed")
            });
            report.check(sc["privileged"] != true, || format!("{at}: privileged"));
            report.check(
                list(&sc["capabilities"]["drop"]) == [Value::from("ALL")]
                    && sc["capabilities"]["add"].is_null(),
                || format!("{at}: capabilities not exactly drop ALL"),
            );
            for kind in ["requests", "limits"] {
                for res in ["cpu", "memory"] {
                    report.check(c["resources"][kind][res].is_string(), || {
                        format!("{at}: no {res} {kind}")
                    });
                }
            }
        }
    }
}

/// Readiness and liveness on the gRPC health service, asking for the
/// container's own service on its gRPC port (TCP with TLS on: the grpc
/// probe speaks plaintext only); the console's on `GET /healthz` of its
/// HTTP port.
fn probes(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    let tls = tls_on(values);
    for (obj, pod) in workload_pods(objects) {
        for c in list(&pod["containers"]) {
            let name = c["name"].as_str().unwrap_or("");
            let port = &c["ports"][0]["containerPort"];
            let at = format!("{scenario}: {} container {name}", obj.id());
            report.check(
                c["ports"][0]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("grpc")),
                || format!("{at}: the first port is not the gRPC port"),
            );
            // The console: its HTTP server's /healthz on the port named http.
            let http = list(&c["ports"]).iter().any(|p| p["name"] == "http");
            for probe in ["readinessProbe", "livenessProbe"] {
                let p = &c[probe];
                let ok = if http {
                    p["httpGet"]["path"] == "/healthz"
                        && p["httpGet"]["port"] == "http"
                        && p["httpGet"]["scheme"] == "HTTP"
                } else if tls {
                    p["tcpSocket"]["port"] == *port && p["grpc"].is_null()
                } else {
                    p["grpc"]["port"] == *port && p["grpc"]["service"] == name
                };
                report.check(ok, || {
                    format!("{at}: {probe} is not the health check of {name} on {port}: {p}")
                });
            }
        }
    }
}

/// A Service and a ConfigMap per enabled service; nothing of a disabled one.
fn services(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    for svc in SERVICES {
        let name = format!("ar-{svc}");
        let on = enabled(values, svc);
        for kind in ["Service", "ConfigMap", "ServiceAccount"] {
            let suffix = if kind == "ConfigMap" { "-config" } else { "" };
            let found = find(objects, kind, &format!("{name}{suffix}")).is_some();
            report.check(found == on, || {
                format!(
                    "{scenario}: {kind} {name}{suffix} {}",
                    if on {
                        "missing"
                    } else {
                        "rendered for a disabled service"
                    }
                )
            });
        }
        let containers = workload_pods(objects)
            .into_iter()
            .flat_map(|(_, pod)| list(&pod["containers"]))
            .filter(|c| c["name"] == svc)
            .count();
        report.check((containers > 0) == on, || {
            format!("{scenario}: {containers} {svc} container(s) with {svc}.enabled={on}")
        });
    }
}

fn mount<'a>(container: &'a Value, path: &str) -> Option<&'a Value> {
    list(&container["volumeMounts"])
        .iter()
        .find(|m| m["mountPath"] == path)
}

fn volume<'a>(pod: &'a Value, name: &Value) -> Option<&'a Value> {
    list(&pod["volumes"]).iter().find(|v| v["name"] == *name)
}

/// File mode: a DaemonSet on the control-plane nodes mounting the audit
/// log directory read-only from the host, checkpoints on a hostPath, no
/// other host path. CloudWatch mode: a Deployment, no host path at all.
fn ingestor(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    if !enabled(values, "ingestor") {
        return;
    }
    let cloudwatch = values["ingestor"]["mode"] == "cloudwatch";
    let ds = find(objects, "DaemonSet", "ar-ingestor");
    let deploy = find(objects, "Deployment", "ar-ingestor");
    report.check(
        ds.is_some() != cloudwatch && deploy.is_some() == cloudwatch,
        || {
            format!(
                "{scenario}: the ingestor must be a {}",
                if cloudwatch {
                    "Deployment"
                } else {
                    "DaemonSet"
                }
            )
        },
    );
    // No pod but the file-mode DaemonSet touches the host.
    for (obj, pod) in workload_pods(objects) {
        if obj.kind() == "DaemonSet" {
            continue;
        }
        report.check(
            list(&pod["volumes"])
                .iter()
                .all(|v| v["hostPath"].is_null()),
            || format!("{scenario}: {} mounts a host path", obj.id()),
        );
    }
    if let Some(ds) = ds {
        daemonset(scenario, ds, report);
    }
    if let Some(deploy) = deploy {
        deployment(scenario, values, objects, deploy, report);
    }
}

/// File mode: the host's audit directory read-only, the checkpoints on the
/// host, on the control-plane nodes.
fn daemonset(scenario: &str, ds: &Obj, report: &mut Report) {
    {
        let pod = &ds.value["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        let at = format!("{scenario}: {}", ds.id());
        let audit = mount(c, "/var/log/calico/audit");
        report.check(audit.is_some_and(|m| m["readOnly"] == true), || {
            format!("{at}: /var/log/calico/audit is not mounted read-only")
        });
        let audit_volume = audit.and_then(|m| volume(pod, &m["name"]));
        report.check(
            audit_volume.is_some_and(|v| v["hostPath"]["path"] == "/var/log/calico/audit"),
            || format!("{at}: the audit mount is not the host's /var/log/calico/audit"),
        );
        let checkpoints = mount(c, "/var/lib/auditrail").and_then(|m| volume(pod, &m["name"]));
        report.check(
            checkpoints.is_some_and(|v| v["hostPath"]["path"] == "/var/lib/auditrail"),
            || format!("{at}: checkpoints are not on the host's /var/lib/auditrail"),
        );
        // Every host path but the checkpoints is mounted read-only.
        for m in list(&c["volumeMounts"]) {
            let host = volume(pod, &m["name"]).is_some_and(|v| !v["hostPath"].is_null());
            if host && m["mountPath"] != "/var/lib/auditrail" {
                report.check(m["readOnly"] == true, || {
                    format!("{at}: {} is writable", m["mountPath"])
                });
            }
        }
        report.check(
            pod["nodeSelector"]
                .get("node-role.kubernetes.io/control-plane")
                .is_some()
                && list(&pod["tolerations"])
                    .iter()
                    .any(|t| t["key"] == "node-role.kubernetes.io/control-plane"),
            || format!("{at}: not on the control-plane nodes"),
        );
    }
}

/// CloudWatch mode: checkpoints on a PVC of their own, the IRSA annotations
/// or the credentials Secret.
fn deployment(scenario: &str, values: &Value, objects: &[Obj], deploy: &Obj, report: &mut Report) {
    {
        let at = format!("{scenario}: {}", deploy.id());
        let pod = &deploy.value["spec"]["template"]["spec"];
        let replicas = deploy.value["spec"]["replicas"].as_u64().unwrap_or(1);
        let checkpoints = mount(&pod["containers"][0], "/var/lib/auditrail")
            .and_then(|m| volume(pod, &m["name"]));
        let ok = if replicas == 1 {
            checkpoints.is_some_and(|v| {
                v["persistentVolumeClaim"]["claimName"] == "ar-ingestor-checkpoints"
            }) && find(objects, "PersistentVolumeClaim", "ar-ingestor-checkpoints").is_some()
        } else {
            checkpoints.is_some_and(|v| !v["ephemeral"].is_null())
        };
        report.check(ok, || {
            format!("{at}: checkpoints are not on a PVC of their own")
        });
        report.check(
            (replicas > 1) == find(objects, "PodDisruptionBudget", "ar-ingestor").is_some(),
            || format!("{at}: a PodDisruptionBudget iff replicas > 1"),
        );
        let annotations = &values["ingestor"]["serviceAccount"]["annotations"];
        if annotations.is_object() {
            let sa = find(objects, "ServiceAccount", "ar-ingestor");
            report.check(
                sa.is_some_and(|sa| sa.value["metadata"]["annotations"] == *annotations),
                || format!("{at}: the IRSA annotations are not on the ServiceAccount"),
            );
        }
        if let Some(secret) = values["ingestor"]["cloudwatch"]["credentialsSecret"].as_str() {
            let creds = mount(&pod["containers"][0], "/etc/auditrail/aws");
            report.check(
                creds.is_some_and(|m| m["readOnly"] == true)
                    && creds
                        .and_then(|m| volume(pod, &m["name"]))
                        .is_some_and(|v| v["secret"]["secretName"] == secret),
                || format!("{at}: {secret} is not mounted read-only at /etc/auditrail/aws"),
            );
            let config = find(objects, "ConfigMap", "ar-ingestor-config");
            report.check(
                config.is_some_and(|c| {
                    c.value["data"]["auditrail.toml"]
                        .as_str()
                        .unwrap_or("")
                        .contains("credentials_dir = \"/etc/auditrail/aws\"")
                }),
                || {
                    format!(
                        "{at}: the config does not read the credentials from /etc/auditrail/aws"
                    )
                },
            );
        }
    }
}

/// Embedded: one StatefulSet pod, the indexer writing and query reading
/// the same claim, query's Service selecting that pod. Elasticsearch:
/// Deployments, spread over nodes and zones, a PDB where replicas > 1.
fn store(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    let es = values["global"]["store"]["type"] == "elasticsearch";
    let sts = find(objects, "StatefulSet", "ar-indexer");
    report.check(sts.is_some() == (!es && enabled(values, "indexer")), || {
        format!("{scenario}: the indexer StatefulSet iff the embedded store")
    });
    if let Some(sts) = sts {
        let at = format!("{scenario}: {}", sts.id());
        let pod = &sts.value["spec"]["template"]["spec"];
        report.check(sts.value["spec"]["replicas"] == 1, || {
            format!("{at}: more than one writer")
        });
        let claims: Vec<&Value> = list(&sts.value["spec"]["volumeClaimTemplates"])
            .iter()
            .map(|c| &c["metadata"]["name"])
            .collect();
        let data_of = |name: &str| {
            list(&pod["containers"])
                .iter()
                .find(|c| c["name"] == name)
                .and_then(|c| mount(c, "/var/lib/auditrail"))
        };
        let indexer = data_of("indexer");
        report.check(
            indexer.is_some_and(|m| m["readOnly"] != true && claims.contains(&&m["name"])),
            || format!("{at}: the indexer does not write a volume claim at /var/lib/auditrail"),
        );
        if enabled(values, "query") {
            let query = data_of("query");
            report.check(
                query.is_some_and(|m| {
                    m["readOnly"] == true && indexer.is_some_and(|i| i["name"] == m["name"])
                }),
                || format!("{at}: query does not read the indexer's volume read-only"),
            );
            let selector = &sts.value["spec"]["selector"]["matchLabels"];
            let service = find(objects, "Service", "ar-query");
            report.check(
                service.is_some_and(|s| s.value["spec"]["selector"] == *selector),
                || format!("{at}: the query Service does not select the indexer's pod"),
            );
        }
    }
    if es {
        for svc in ["indexer", "query"] {
            if !enabled(values, svc) {
                continue;
            }
            let name = format!("ar-{svc}");
            let deploy = find(objects, "Deployment", &name);
            report.check(deploy.is_some(), || {
                format!("{scenario}: no Deployment {name}")
            });
            if let Some(d) = deploy {
                let replicas = d.value["spec"]["replicas"].as_u64().unwrap_or(1);
                report.check(
                    (replicas > 1) == find(objects, "PodDisruptionBudget", &name).is_some(),
                    || format!("{scenario}: {name}: a PodDisruptionBudget iff replicas > 1"),
                );
                report.check(
                    !d.value["spec"]["template"]["spec"]["topologySpreadConstraints"].is_null(),
                    || format!("{scenario}: {name}: no topology spread"),
                );
                let c = &d.value["spec"]["template"]["spec"]["containers"][0];
                let secret_env = list(&c["env"])
                    .iter()
                    .filter(|e| !e["valueFrom"]["secretKeyRef"].is_null())
                    .count();
                let auth = &values["global"]["store"]["elasticsearch"]["auth"];
                if auth["type"] == "basic" {
                    report.check(secret_env == 2, || {
                        format!("{scenario}: {name}: the credentials are not taken from the Secret")
                    });
                }
                let config = find(objects, "ConfigMap", &format!("{name}-config"));
                report.check(
                    config.is_some_and(|c| {
                        c.value["data"]["auditrail.toml"]
                            .as_str()
                            .unwrap_or("")
                            .contains("[store.elasticsearch]")
                    }),
                    || format!("{scenario}: {name}: the config has no [store.elasticsearch]"),
                );
            }
        }
    }
}

/// Whether the values leave TLS on (the default).
fn tls_on(values: &Value) -> bool {
    values["global"]["tls"]["enabled"] != false
}

/// Where the certificates come from, as the chart decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    Off,
    CertManager,
    Existing,
    Generated,
}

fn tls_mode(values: &Value) -> TlsMode {
    let tls = &values["global"]["tls"];
    if !tls_on(values) {
        TlsMode::Off
    } else if tls["certManager"]["enabled"] == true {
        TlsMode::CertManager
    } else if tls["existingSecrets"].as_object().is_some_and(|m| {
        m.values()
            .any(|v| v.as_str().is_some_and(|s| !s.is_empty()))
    }) {
        TlsMode::Existing
    } else {
        TlsMode::Generated
    }
}

/// The servers that require client certificates (`global.tls.clientCertificates`).
fn client_certificates(values: &Value) -> Vec<String> {
    match values["global"]["tls"]["clientCertificates"].as_array() {
        Some(list) => list
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        None => vec!["indexer".to_owned()],
    }
}

fn config_of<'a>(objects: &'a [Obj], svc: &str) -> &'a str {
    find(objects, "ConfigMap", &format!("ar-{svc}-config"))
        .and_then(|c| c.value["data"]["auditrail.toml"].as_str())
        .unwrap_or("")
}

/// TLS on (the default): every auditrail container mounts its
/// certificate, every server's config has `[server.tls]` with its
/// certificate and key and no `insecure_listen`, a client CA exactly on
/// the servers of `clientCertificates`, and the ingestor's
/// `[ingestor.indexer_client]` the CA and its client certificate.
/// Plaintext only as the explicit opt-in. cert-manager: one Certificate
/// per enabled service; generated: [`generated_secrets`].
fn tls(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    let on = tls_on(values);
    let mode = tls_mode(values);
    for (obj, pod) in workload_pods(objects) {
        for c in list(&pod["containers"]) {
            let mounted = mount(c, "/etc/auditrail/tls").is_some();
            report.check(mounted == on, || {
                format!(
                    "{scenario}: {} container {}: TLS mount {}",
                    obj.id(),
                    c["name"],
                    if on { "missing" } else { "without TLS" }
                )
            });
        }
    }
    let mtls = client_certificates(values);
    for svc in SERVICES.iter().filter(|s| enabled(values, s)) {
        let config = config_of(objects, svc);
        let at = format!("{scenario}: ar-{svc}-config");
        report.check(config.contains("[server.tls]") == on, || {
            format!("{at}: [server.tls] must be there iff global.tls.enabled")
        });
        report.check(config.contains("insecure_listen = true") != on, || {
            format!("{at}: insecure_listen must be rendered only without TLS (the explicit opt-in)")
        });
        if on {
            report.check(
                config.contains("cert = \"/etc/auditrail/tls/tls.crt\"")
                    && config.contains("key = \"/etc/auditrail/tls/tls.key\""),
                || format!("{at}: [server.tls] lacks the mounted certificate and key"),
            );
            let wants_ca = mtls.iter().any(|m| m == svc);
            report.check(
                config.contains("client_ca = \"/etc/auditrail/tls/ca.crt\"") == wants_ca,
                || {
                    format!(
                        "{at}: client_ca must be set iff {svc} is in global.tls.clientCertificates"
                    )
                },
            );
        }
        if *svc == "ingestor" {
            let client = config
                .split("[ingestor.indexer_client]")
                .nth(1)
                .unwrap_or("");
            report.check(
                !on || (client.contains("tls_ca = \"/etc/auditrail/tls/ca.crt\"")
                    && client.contains("tls_cert = \"/etc/auditrail/tls/tls.crt\"")
                    && client.contains("tls_key = \"/etc/auditrail/tls/tls.key\"")
                    && config.contains("indexer_url = \"https://ar-indexer:")),
                || {
                    format!(
                        "{scenario}: the ingestor's [ingestor.indexer_client] lacks the CA or its \
                         client certificate, or its indexer_url is not https"
                    )
                },
            );
        }
        let cert_manager = mode == TlsMode::CertManager;
        report.check(
            find(objects, "Certificate", &format!("ar-{svc}")).is_some() == cert_manager,
            || format!("{scenario}: Certificate ar-{svc} iff cert-manager"),
        );
    }
    // Every TLS volume names a Secret the render makes or the user gives.
    for (obj, pod) in workload_pods(objects).into_iter().chain(
        objects
            .iter()
            .filter(|o| o.kind() == "Pod")
            .map(|o| (o, &o.value["spec"])),
    ) {
        if let Some(v) = volume(pod, &Value::from("tls")) {
            let secret = v["secret"]["secretName"].as_str().unwrap_or("");
            let rendered = find(objects, "Secret", secret).is_some()
                || objects
                    .iter()
                    .any(|o| o.kind() == "Certificate" && o.value["spec"]["secretName"] == secret);
            report.check(rendered || mode == TlsMode::Existing, || {
                format!(
                    "{scenario}: {} mounts the TLS Secret {secret}, which nothing makes",
                    obj.id()
                )
            });
        }
    }
    if mode == TlsMode::Generated {
        generated_secrets(scenario, values, objects, report);
    } else {
        report.check(find(objects, "Secret", "ar-tls-ca").is_none(), || {
            format!("{scenario}: a generated CA although the certificates come from elsewhere")
        });
    }
    ingestor_authorized(scenario, values, objects, report);
}

/// A PEM certificate from a Secret's base64 data.
fn secret_cert(secret: &Obj, key: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let b64 = secret.value["data"][key].as_str()?;
    let pem = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    Some(pem.contents)
}

/// The names of a certificate: its DNS SANs, subject, issuer, and whether
/// it is a CA.
struct CertNames {
    dns: Vec<String>,
    subject: String,
    issuer: String,
    ca: bool,
    identity: Option<auditrail_access::Identity>,
}

fn cert_names(der: &[u8]) -> Option<CertNames> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let sans: Vec<GeneralName<'_>> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| ext.value.general_names.clone())
        .unwrap_or_default();
    let dns: Vec<String> = sans
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some((*d).to_owned()),
            _ => None,
        })
        .collect();
    let uri = sans.iter().find_map(|n| match n {
        GeneralName::URI(u) => Some((*u).to_owned()),
        _ => None,
    });
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_owned);
    // The server's rule (crates/server/src/auth_layer.rs,
    // certificate_identity): the first URI SAN, else DNS SAN, else the CN;
    // the groups are the subject's O values.
    let identity =
        uri.or_else(|| dns.first().cloned())
            .or(cn)
            .map(|name| auditrail_access::Identity {
                name,
                groups: cert
                    .subject()
                    .iter_organization()
                    .filter_map(|a| a.as_str().ok().map(str::to_owned))
                    .collect(),
                via: auditrail_access::Via::Certificate,
            });
    Some(CertNames {
        dns,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        ca: cert.is_ca(),
        identity,
    })
}

/// Generated TLS (neither cert-manager nor existing Secrets): the CA's
/// Secret, and per enabled service (and the helm test pods) a
/// kubernetes.io/tls Secret whose certificate the CA issued, naming the
/// Service's DNS names, with the CA as `ca.crt`.
fn generated_secrets(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    let ca_secret = find(objects, "Secret", "ar-tls-ca");
    report.check(ca_secret.is_some(), || {
        format!("{scenario}: no generated CA Secret ar-tls-ca")
    });
    let Some(ca_secret) = ca_secret else { return };
    let ca = secret_cert(ca_secret, "tls.crt").and_then(|der| cert_names(&der));
    report.check(ca.as_ref().is_some_and(|c| c.ca), || {
        format!("{scenario}: ar-tls-ca holds no CA certificate")
    });
    let Some(ca) = ca else { return };
    let mut components: Vec<&str> = SERVICES
        .iter()
        .copied()
        .filter(|s| enabled(values, s))
        .collect();
    if values["tests"]["enabled"] != false {
        components.push("test");
    }
    for component in components {
        let name = format!("ar-{component}-tls");
        let at = format!("{scenario}: Secret {name}");
        let Some(secret) = find(objects, "Secret", &name) else {
            report.fail(format!("{at}: missing"));
            continue;
        };
        report.check(
            secret.value["type"] == "kubernetes.io/tls"
                && secret.value["data"]["ca.crt"] == ca_secret.value["data"]["tls.crt"]
                && secret.value["data"]["tls.key"]
                    .as_str()
                    .is_some_and(|k| !k.is_empty()),
            || format!("{at}: not a kubernetes.io/tls Secret with its key and the CA as ca.crt"),
        );
        let cert = secret_cert(secret, "tls.crt").and_then(|der| cert_names(&der));
        let Some(cert) = cert else {
            report.fail(format!("{at}: tls.crt holds no certificate"));
            continue;
        };
        report.check(cert.issuer == ca.subject && !cert.ca, || {
            format!(
                "{at}: issued by {:?}, not by the CA {:?}",
                cert.issuer, ca.subject
            )
        });
        let expected: Vec<String> = if component == "test" {
            Vec::new()
        } else {
            let svc = format!("ar-{component}");
            vec![
                svc.clone(),
                format!("{svc}.auditrail"),
                format!("{svc}.auditrail.svc"),
                format!("{svc}.auditrail.svc.cluster.local"),
                "localhost".to_owned(),
            ]
        };
        report.check(cert.dns == expected, || {
            format!("{at}: DNS names {:?}, expected {expected:?}", cert.dns)
        });
    }
}

/// The roles file a container reads (`[server.auth] roles_file`), from the
/// ConfigMap mounted on its folder.
fn roles_file_of(objects: &[Obj], container: &str) -> Option<String> {
    let config = config_of(objects, container);
    let path = config
        .lines()
        .find_map(|l| l.strip_prefix("roles_file = "))?
        .trim_matches('"');
    let (folder, file) = path.rsplit_once('/')?;
    workload_pods(objects).into_iter().find_map(|(_, pod)| {
        let c = list(&pod["containers"])
            .iter()
            .find(|c| c["name"] == container)?;
        let m = mount(c, folder)?;
        let map_name = volume(pod, &m["name"])?["configMap"]["name"].as_str()?;
        let map = find(objects, "ConfigMap", map_name)?;
        map.value["data"][file].as_str().map(str::to_owned)
    })
}

/// The ingestor's identity toward the indexer (the first DNS name of its
/// certificate, as the server reads client certificates) is authorized to
/// ingest by what the indexer decides with: the roles file it reads, or,
/// with the Kubernetes authorizer, a ClusterRoleBinding to the ingestor's
/// ClusterRole.
fn ingestor_authorized(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    let mode = tls_mode(values);
    if !enabled(values, "ingestor")
        || !enabled(values, "indexer")
        || !client_certificates(values).iter().any(|s| s == "indexer")
        || !matches!(mode, TlsMode::Generated | TlsMode::CertManager)
        // A roles file of the user's (global.auth.rolesConfigMap) is not
        // rendered: binding the ingestor there is the user's part (README).
        || values["global"]["auth"]["rolesConfigMap"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    {
        return;
    }
    let identity = secret_identity(objects, mode, "ar-ingestor-tls");
    let Some(identity) = identity else {
        report.fail(format!(
            "{scenario}: the ingestor's certificate names no identity"
        ));
        return;
    };
    let indexer = config_of(objects, "indexer");
    if indexer.contains("kubernetes_authorization = true") {
        let bound = objects.iter().any(|o| {
            o.kind() == "ClusterRoleBinding"
                && o.value["roleRef"]["name"] == "ar-ingestor"
                && list(&o.value["subjects"])
                    .iter()
                    .any(|s| s["kind"] == "User" && s["name"] == identity.name.as_str())
        });
        report.check(bound, || {
            format!(
                "{scenario}: with the Kubernetes authorizer, no ClusterRoleBinding gives the \
                 ingestor's identity {:?} the ClusterRole ar-ingestor",
                identity.name
            )
        });
        return;
    }
    let allowed = roles_file_of(objects, "indexer").is_some_and(|text| {
        auditrail_access::Roles::parse("roles file", &text).is_ok_and(|roles| {
            matches!(
                roles.decide(&identity, auditrail_access::Permission::Ingest),
                auditrail_access::Decision::Allow(_)
            )
        })
    });
    report.check(allowed, || {
        format!(
            "{scenario}: the indexer's roles file does not let the ingestor's identity {:?} ingest",
            identity.name
        )
    });
}

/// Under mTLS the console presents its own certificate: each server it
/// calls that requires client certificates and checks tokens names the
/// console's certificate identity (for an existing Secret, the documented
/// `ar-console`) in `[server.auth] token_forwarders`, so a signed-in
/// user's calls are the user's; without a token source it names none (a
/// forwarded token could not be checked, and the server would refuse to
/// start).
fn console_forwarding(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    let mode = tls_mode(values);
    if mode == TlsMode::Off || !enabled(values, "console") {
        return;
    }
    let auth = &values["global"]["auth"];
    let tokens = auth["tokenSecret"].as_str().is_some_and(|s| !s.is_empty())
        || auth["kubernetes"]["authenticate"] == true;
    let console = if mode == TlsMode::Existing {
        Some("ar-console".to_owned())
    } else {
        tls_secret_of(objects, "console")
            .and_then(|secret| secret_identity(objects, mode, &secret))
            .map(|i| i.name)
    };
    let Some(console) = console else {
        report.fail(format!(
            "{scenario}: the console's certificate names no identity"
        ));
        return;
    };
    let mtls = client_certificates(values);
    for svc in ["query", "reporter", "ingestor", "indexer"] {
        if !enabled(values, svc) || !mtls.iter().any(|m| m == svc) {
            continue;
        }
        let auth_table = table(config_of(objects, svc), "[server.auth]").unwrap_or_default();
        let forwarders: Vec<&str> = auth_table
            .iter()
            .filter_map(|l| l.strip_prefix("token_forwarders = "))
            .collect();
        let expected = if tokens {
            vec![format!("[\"{console}\"]")]
        } else {
            Vec::new()
        };
        report.check(forwarders == expected, || {
            format!(
                "{scenario}: ar-{svc}-config: token_forwarders is {forwarders:?}, expected \
                 {expected:?} (the console's certificate identity, when the server checks tokens)"
            )
        });
    }
}

/// The reporter reads the trail at `reporter.queryUrl` (default the
/// release's query Service) and, with `reporter.snapshots.enabled`, takes
/// its daily snapshots in-cluster: `[reporter.snapshots]` with
/// `in_cluster`, its pod mounting its token, and (with `rbac.create`) a
/// ClusterRole bound to its ServiceAccount that may get and list every
/// kind the replay tracks (`auditrail_replay::TRACKED`). Without
/// snapshots, none of the three.
fn reporter(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    if !enabled(values, "reporter") {
        return;
    }
    let v = &values["reporter"];
    let config = config_of(objects, "reporter");
    let at = format!("{scenario}: ar-reporter-config");
    let scheme = if tls_on(values) { "https" } else { "http" };
    let query = v["queryUrl"]
        .as_str()
        .filter(|u| !u.is_empty())
        .map_or_else(|| format!("{scheme}://ar-query:50055"), str::to_owned);
    let settings = table(config, "[reporter]").unwrap_or_default();
    report.check(
        settings.contains(&format!("query_url = \"{query}\"").as_str()),
        || format!("{at}: [reporter] is {settings:?}, expected query_url = {query:?}"),
    );
    let snapshots = v["snapshots"]["enabled"] != false;
    let hour = v["snapshots"]["hourUtc"].as_u64().unwrap_or(0);
    let expected = snapshots.then(|| {
        vec![
            "enabled = true".to_owned(),
            "in_cluster = true".to_owned(),
            format!("hour_utc = {hour}"),
        ]
    });
    let rendered = table(config, "[reporter.snapshots]")
        .map(|lines| lines.into_iter().map(str::to_owned).collect::<Vec<_>>());
    report.check(rendered == expected, || {
        format!("{at}: [reporter.snapshots] is {rendered:?}, expected {expected:?}")
    });
    let kube_auth = kubernetes_reviews(values);
    let mounted = workload_pods(objects)
        .into_iter()
        .find(|(o, _)| o.kind() == "Deployment" && o.name() == "ar-reporter")
        .is_some_and(|(_, pod)| pod["automountServiceAccountToken"] == true);
    report.check(mounted == (snapshots || kube_auth), || {
        format!(
            "{scenario}: the reporter's pod mounts its token: {mounted}, expected {} (for \
             snapshots or access reviews only)",
            snapshots || kube_auth
        )
    });
    let role = find(objects, "ClusterRole", "ar-reporter");
    let wanted = snapshots && v["rbac"]["create"] != false;
    report.check(role.is_some() == wanted, || {
        format!("{scenario}: a ClusterRole ar-reporter iff snapshots and rbac.create")
    });
    let Some(role) = role else { return };
    for (resource, group) in auditrail_replay::TRACKED {
        let may = |verb: &str| {
            list(&role.value["rules"]).iter().any(|rule| {
                list(&rule["apiGroups"]).iter().any(|g| g == group)
                    && list(&rule["resources"]).iter().any(|r| r == resource)
                    && list(&rule["verbs"]).iter().any(|v| v == verb)
            })
        };
        report.check(may("list") && may("get"), || {
            format!(
                "{scenario}: ClusterRole ar-reporter may not get and list {resource} of the \
                 group {group:?}, which snapshots list"
            )
        });
    }
    let bound = find(objects, "ClusterRoleBinding", "ar-reporter").is_some_and(|b| {
        b.value["roleRef"]["name"] == "ar-reporter"
            && list(&b.value["subjects"])
                .iter()
                .any(|s| s["kind"] == "ServiceAccount" && s["name"] == "ar-reporter")
    });
    report.check(bound, || {
        format!("{scenario}: ClusterRole ar-reporter is not bound to the reporter's ServiceAccount")
    });
}

/// The services whose calls leave access records that an indexer of
/// another process stores (#17): the query service, the provisioner and
/// the reporter.
const RECORDERS: [&str; 3] = ["query", "provisioner", "reporter"];

/// The lines of a config's `header` table (up to the next table), blank
/// lines left out; `None` without that table.
fn table<'a>(config: &'a str, header: &str) -> Option<Vec<&'a str>> {
    let mut lines = config.lines().skip_while(|l| l.trim() != header);
    lines.next()?;
    Some(
        lines
            .map(str::trim)
            .take_while(|l| !l.starts_with('['))
            .filter(|l| !l.is_empty())
            .collect(),
    )
}

/// Access records (#17): the query service, provisioner and reporter send
/// theirs to the release's indexer, query on the embedded store over
/// localhost (it is a container of the indexer's pod; the indexer's
/// certificate names `localhost`), the others and query on Elasticsearch
/// to the indexer's Service; with TLS presenting their own certificate and
/// trusting the CA. Without the indexer in the release, recording is off,
/// and nothing else is said about it.
fn access_log(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    let es = values["global"]["store"]["type"] == "elasticsearch";
    let tls = tls_on(values);
    let port = values["global"]["ports"]["indexer"]["grpc"]
        .as_u64()
        .unwrap_or(50054);
    for svc in RECORDERS.iter().filter(|s| enabled(values, s)) {
        let config = config_of(objects, svc);
        let at = format!("{scenario}: ar-{svc}-config");
        let settings = table(config, "[server.access_log]");
        let client = table(config, "[server.access_log.client]");
        if !enabled(values, "indexer") {
            report.check(
                settings.as_deref() == Some(&["enabled = false"][..]) && client.is_none(),
                || {
                    format!(
                        "{at}: without the indexer, [server.access_log] must be exactly                          enabled = false: {settings:?}, client {client:?}"
                    )
                },
            );
            continue;
        }
        let scheme = if tls { "https" } else { "http" };
        let host = if *svc == "query" && !es {
            "localhost"
        } else {
            "ar-indexer"
        };
        let url = format!("indexer_url = \"{scheme}://{host}:{port}\"");
        report.check(settings.as_deref() == Some(&[url.as_str()][..]), || {
            format!("{at}: [server.access_log] is {settings:?}, expected only {url}")
        });
        let expected_client = tls.then(|| {
            vec![
                "tls_ca = \"/etc/auditrail/tls/ca.crt\"",
                "tls_cert = \"/etc/auditrail/tls/tls.crt\"",
                "tls_key = \"/etc/auditrail/tls/tls.key\"",
            ]
        });
        report.check(client == expected_client, || {
            format!(
                "{at}: [server.access_log.client] is {client:?}, expected {expected_client:?} \
                 (the CA and its own certificate with TLS, nothing without)"
            )
        });
    }
    recorders_authorized(scenario, values, objects, report);
}

/// Every file or folder under `/etc/auditrail/` that a container's config
/// names (its certificates, tokens, roles file, credentials) is on one of that
/// container's mounts: a config never points at a Secret the pod lacks.
fn config_files_mounted(scenario: &str, objects: &[Obj], report: &mut Report) {
    for (obj, pod) in workload_pods(objects) {
        for c in list(&pod["containers"]) {
            let Some((_, config)) = super::config_of(pod, c, objects) else {
                continue;
            };
            let files = config
                .split('"')
                .skip(1)
                .step_by(2)
                .filter(|s| s.starts_with("/etc/auditrail/"));
            for file in files {
                let mounted = list(&c["volumeMounts"]).iter().any(|m| {
                    m["mountPath"]
                        .as_str()
                        .is_some_and(|dir| file == dir || file.starts_with(&format!("{dir}/")))
                });
                report.check(mounted, || {
                    format!(
                        "{scenario}: {} container {}: its config names {file}, on no mount",
                        obj.id(),
                        c["name"]
                    )
                });
            }
        }
    }
}

/// The Secret mounted at `/etc/auditrail/tls` in the container named
/// `svc`: its certificate, also its client certificate.
fn tls_secret_of(objects: &[Obj], svc: &str) -> Option<String> {
    workload_pods(objects).into_iter().find_map(|(_, pod)| {
        let c = list(&pod["containers"]).iter().find(|c| c["name"] == svc)?;
        let m = mount(c, "/etc/auditrail/tls")?;
        volume(pod, &m["name"])?["secret"]["secretName"]
            .as_str()
            .map(str::to_owned)
    })
}

/// The identity the certificate of Secret `secret` proves, as the server
/// reads client certificates: parsed from the generated Secret, or the
/// first DNS name of the cert-manager Certificate that writes it.
fn secret_identity(
    objects: &[Obj],
    mode: TlsMode,
    secret: &str,
) -> Option<auditrail_access::Identity> {
    match mode {
        TlsMode::Generated => find(objects, "Secret", secret)
            .and_then(|s| secret_cert(s, "tls.crt"))
            .and_then(|der| cert_names(&der))
            .and_then(|c| c.identity),
        TlsMode::CertManager => objects
            .iter()
            .find(|o| o.kind() == "Certificate" && o.value["spec"]["secretName"] == secret)
            .and_then(|c| {
                Some(auditrail_access::Identity {
                    name: c.value["spec"]["dnsNames"][0].as_str()?.to_owned(),
                    groups: list(&c.value["spec"]["subject"]["organizations"])
                        .iter()
                        .filter_map(|o| o.as_str().map(str::to_owned))
                        .collect(),
                    via: auditrail_access::Via::Certificate,
                })
            }),
        TlsMode::Off | TlsMode::Existing => None,
    }
}

/// The query service's, provisioner's and reporter's identities toward the
/// indexer (their own certificates, `ar-<service>`, as mounted in their
/// containers: query's too, in the indexer's pod) may `record_access` by
/// what the indexer decides with: the roles file it reads, or, with the
/// Kubernetes authorizer, a ClusterRoleBinding to the recorder's
/// ClusterRole.
fn recorders_authorized(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    let mode = tls_mode(values);
    if !enabled(values, "indexer")
        || !client_certificates(values).iter().any(|s| s == "indexer")
        || !matches!(mode, TlsMode::Generated | TlsMode::CertManager)
        // A roles file of the user's is the user's to write (README).
        || values["global"]["auth"]["rolesConfigMap"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    {
        return;
    }
    let kubernetes = config_of(objects, "indexer").contains("kubernetes_authorization = true");
    let roles = roles_file_of(objects, "indexer")
        .and_then(|text| auditrail_access::Roles::parse("roles file", &text).ok());
    for svc in RECORDERS.iter().filter(|s| enabled(values, s)) {
        let at = format!("{scenario}: the {svc}'s access records");
        let identity =
            tls_secret_of(objects, svc).and_then(|secret| secret_identity(objects, mode, &secret));
        let Some(identity) = identity else {
            report.fail(format!("{at}: its certificate names no identity"));
            continue;
        };
        report.check(identity.name == format!("ar-{svc}"), || {
            format!(
                "{at}: its container presents the certificate of {:?}, not its own",
                identity.name
            )
        });
        let allowed = if kubernetes {
            objects.iter().any(|o| {
                o.kind() == "ClusterRoleBinding"
                    && o.value["roleRef"]["name"] == "ar-recorder"
                    && list(&o.value["subjects"])
                        .iter()
                        .any(|s| s["kind"] == "User" && s["name"] == identity.name.as_str())
            })
        } else {
            roles.as_ref().is_some_and(|roles| {
                matches!(
                    roles.decide(&identity, auditrail_access::Permission::RecordAccess),
                    auditrail_access::Decision::Allow(_)
                )
            })
        };
        report.check(allowed, || {
            format!(
                "{at}: the indexer does not let its identity {:?} record_access ({})",
                identity.name,
                if kubernetes {
                    "no ClusterRoleBinding to ar-recorder"
                } else {
                    "the roles file it reads"
                }
            )
        });
    }
}

/// Whether a ClusterRole's rules allow `verb` on `resource` of
/// `auditrail.io`.
fn rules_allow(rules: &Value, verb: &str, resource: &str) -> bool {
    let has =
        |list_value: &Value, item: &str| list(list_value).iter().any(|v| v == item || v == "*");
    list(rules).iter().any(|r| {
        has(&r["apiGroups"], auditrail_access::KUBERNETES_GROUP)
            && has(&r["resources"], resource)
            && has(&r["verbs"], verb)
    })
}

/// Whether the servers ask the API server for reviews (the Kubernetes
/// authenticator or authorizer): every pod then mounts its token.
fn kubernetes_reviews(values: &Value) -> bool {
    let kube = &values["global"]["auth"]["kubernetes"];
    kube["authenticate"] == true || kube["authorize"] == true
}

/// The Kubernetes authenticator and authorizer: with either, every
/// service's account may create TokenReviews and SubjectAccessReviews,
/// every workload mounts its token and may reach the API server; with the
/// authorizer, a ClusterRole per built-in role allowing exactly the verbs
/// and resources of the permissions that role holds (as
/// `auditrail-access` decides and maps them), bound to the subjects of
/// the values. Without them, none of it.
fn kubernetes_access(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    let authorize = values["global"]["auth"]["kubernetes"]["authorize"] == true;
    let review = kubernetes_reviews(values);
    let review_role = find(objects, "ClusterRole", "ar-access-review");
    report.check(review_role.is_some() == review, || {
        format!("{scenario}: ClusterRole ar-access-review iff a Kubernetes option is on")
    });
    if let Some(role) = review_role {
        let rules = &role.value["rules"];
        let allows = |group: &str, resource: &str| {
            list(rules).iter().any(|r| {
                list(&r["apiGroups"]).iter().any(|g| g == group)
                    && list(&r["resources"]).iter().any(|x| x == resource)
                    && list(&r["verbs"]).iter().any(|v| v == "create")
            })
        };
        report.check(
            allows("authentication.k8s.io", "tokenreviews")
                && allows("authorization.k8s.io", "subjectaccessreviews")
                && list(rules).len() == 2,
            || format!("{scenario}: ar-access-review is not exactly create on tokenreviews and subjectaccessreviews"),
        );
        let binding = find(objects, "ClusterRoleBinding", "ar-access-review");
        for svc in SERVICES.iter().filter(|s| enabled(values, s)) {
            let bound = binding.is_some_and(|b| {
                b.value["roleRef"]["name"] == "ar-access-review"
                    && list(&b.value["subjects"]).iter().any(|s| {
                        s["kind"] == "ServiceAccount"
                            && s["name"] == format!("ar-{svc}").as_str()
                            && s["namespace"] == "auditrail"
                    })
            });
            report.check(bound, || {
                format!("{scenario}: the {svc}'s ServiceAccount may not create the reviews")
            });
        }
        let flows = flows(objects);
        for (obj, pod) in workload_pods(objects) {
            report.check(pod["automountServiceAccountToken"] == true, || {
                format!(
                    "{scenario}: {} does not mount its token for the reviews",
                    obj.id()
                )
            });
            let c = component(obj);
            report.check(
                flows.contains(&format!("out {c} -> cidr:0.0.0.0/0 :443/TCP")),
                || format!("{scenario}: {} may not reach the API server", obj.id()),
            );
        }
    }
    builtin_cluster_roles(scenario, values, objects, authorize, report);
}

/// With the authorizer: a ClusterRole per built-in role allowing exactly
/// the verbs and resources of the permissions that role holds, bound to
/// the subjects of the values (and the ingestor's certificate identity to
/// the ingestor's, the query service's, provisioner's and reporter's to
/// the recorder's).
fn builtin_cluster_roles(
    scenario: &str,
    values: &Value,
    objects: &[Obj],
    authorize: bool,
    report: &mut Report,
) {
    let roles = auditrail_access::Roles::builtin();
    for role in ["viewer", "exporter", "ingestor", "recorder", "admin"] {
        let name = format!("ar-{role}");
        let cluster_role = find(objects, "ClusterRole", &name);
        report.check(cluster_role.is_some() == authorize, || {
            format!("{scenario}: ClusterRole {name} iff global.auth.kubernetes.authorize")
        });
        let Some(cluster_role) = cluster_role else {
            continue;
        };
        let who = auditrail_access::Identity {
            name: String::new(),
            groups: vec![role.to_owned()],
            via: auditrail_access::Via::Token,
        };
        for permission in auditrail_access::Permission::ALL {
            let held = matches!(
                roles.decide(&who, permission),
                auditrail_access::Decision::Allow(_)
            );
            let (verb, resources) = auditrail_access::kubernetes_attributes(permission);
            for resource in resources {
                let allowed = rules_allow(&cluster_role.value["rules"], verb, resource);
                report.check(allowed == held, || {
                    format!(
                        "{scenario}: ClusterRole {name} {} {verb} on {resource} ({permission}), \
                         which the role {role} {}",
                        if allowed { "allows" } else { "does not allow" },
                        if held { "holds" } else { "does not hold" }
                    )
                });
            }
        }
        let mut expected: Vec<Value> =
            list(&values["global"]["auth"]["rbac"]["bindings"][role]).to_vec();
        if role == "ingestor" && enabled(values, "ingestor") {
            expected.push(serde_json::json!({"kind": "User", "name": "ar-ingestor"}));
        }
        if role == "recorder" && enabled(values, "indexer") {
            for svc in RECORDERS.iter().filter(|s| enabled(values, s)) {
                expected.push(serde_json::json!({"kind": "User", "name": format!("ar-{svc}")}));
            }
        }
        let binding = find(objects, "ClusterRoleBinding", &name);
        let subjects: Vec<&Value> = binding
            .map(|b| list(&b.value["subjects"]).iter().collect())
            .unwrap_or_default();
        let same = subjects.len() == expected.len()
            && expected.iter().zip(&subjects).all(|(e, s)| {
                s["kind"] == e["kind"]
                    && s["name"] == e["name"]
                    && (e["kind"] != "ServiceAccount"
                        || s["namespace"]
                            == *e.get("namespace").unwrap_or(&Value::from("auditrail")))
            })
            && binding.is_none_or(|b| b.value["roleRef"]["name"] == name.as_str());
        report.check(same, || {
            format!(
                "{scenario}: ClusterRoleBinding {name} binds {subjects:?}, expected {expected:?}"
            )
        });
    }
}

/// `helm test`: a health pod per enabled service and a search on query,
/// each labelled as a client the NetworkPolicies let in.
fn tests(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    let pods: Vec<&Obj> = objects.iter().filter(|o| o.kind() == "Pod").collect();
    let mut expected: BTreeSet<String> = SERVICES
        .iter()
        .filter(|s| enabled(values, s))
        .map(|s| format!("ar-test-health-{s}"))
        .collect();
    if enabled(values, "query") {
        expected.insert("ar-test-search".to_owned());
    }
    let names: BTreeSet<String> = pods.iter().map(|p| p.name().to_owned()).collect();
    report.check(names == expected, || {
        format!("{scenario}: test pods {names:?}, expected {expected:?}")
    });
    for p in pods {
        report.check(
            p.value["metadata"]["annotations"]["helm.sh/hook"] == "test"
                && p.value["metadata"]["labels"]["auditrail.io/client"] == "true",
            || format!("{scenario}: {} is not a labelled helm test hook", p.id()),
        );
        // A one-service workload serves only its own health entry: each
        // health pod asks for exactly that service, at that service.
        if let Some(svc) = p.name().strip_prefix("ar-test-health-") {
            let args: Vec<&str> = p.value["spec"]["containers"][0]["args"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let asks = args.windows(2).any(|w| w == ["--service", svc]);
            let at = args
                .windows(2)
                .any(|w| w[0] == "--server" && w[1].contains(&format!("ar-{svc}:")));
            report.check(args.first() == Some(&"health") && asks && at, || {
                format!(
                    "{scenario}: {} does not ask {svc}'s health of {svc}: {args:?}",
                    p.id()
                )
            });
        }
    }
}

/// A peer of a NetworkPolicy rule, as the flows below name it.
fn peer(p: &Value) -> String {
    if p["any"] == true {
        return "any".to_owned();
    }
    if let Some(cidr) = p["ipBlock"]["cidr"].as_str() {
        return format!("cidr:{cidr}");
    }
    let pods = &p["podSelector"]["matchLabels"];
    if pods["k8s-app"] == "kube-dns" {
        return "dns".to_owned();
    }
    if let Some(ns) = p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"].as_str()
    {
        return format!("ns:{ns}");
    }
    if pods["auditrail.io/client"] == "true" {
        return "clients".to_owned();
    }
    if let Some(c) = pods[COMPONENT].as_str() {
        return format!("pod:{c}");
    }
    format!("other:{p}")
}

/// Every flow the NetworkPolicies allow: `in <pods> <- <peer> :<port>` and
/// `out <pods> -> <peer> :<port>`.
pub(crate) fn flows(objects: &[Obj]) -> BTreeSet<String> {
    let mut flows = BTreeSet::new();
    for np in objects.iter().filter(|o| o.kind() == "NetworkPolicy") {
        let spec = &np.value["spec"];
        let selected = spec["podSelector"]["matchLabels"][COMPONENT]
            .as_str()
            .unwrap_or("?");
        for (dir, key, arrow) in [("in", "ingress", "from"), ("out", "egress", "to")] {
            for rule in list(&spec[key]) {
                // A rule without peers allows every peer.
                let any = [serde_json::json!({"any": true})];
                let peers = if rule[arrow].is_null() {
                    &any[..]
                } else {
                    list(&rule[arrow])
                };
                for p in peers {
                    for port in list(&rule["ports"]) {
                        let proto = port["protocol"].as_str().unwrap_or("TCP");
                        let sign = if dir == "in" { "<-" } else { "->" };
                        flows.insert(format!(
                            "{dir} {selected} {sign} {} :{}/{proto}",
                            peer(p),
                            port["port"]
                        ));
                    }
                }
            }
        }
    }
    flows
}

/// The documented flows of the default install (chart README).
const DEFAULT_FLOWS: &[&str] = &[
    "in console <- any :8080/TCP",
    "in console <- clients :50057/TCP",
    "in console <- ns:monitoring :9470/TCP",
    "in indexer <- pod:console :50054/TCP",
    "in indexer <- pod:console :50055/TCP",
    "in ingestor <- pod:console :50053/TCP",
    "in reporter <- pod:console :50056/TCP",
    "out console -> dns :53/TCP",
    "out console -> dns :53/UDP",
    "out console -> pod:indexer :50054/TCP",
    "out console -> pod:indexer :50055/TCP",
    "out console -> pod:ingestor :50053/TCP",
    "out console -> pod:reporter :50056/TCP",
    "out test -> pod:console :50057/TCP",
    "in indexer <- clients :50055/TCP",
    "in indexer <- ns:monitoring :9467/TCP",
    "in indexer <- ns:monitoring :9468/TCP",
    "in indexer <- pod:ingestor :50054/TCP",
    "in indexer <- pod:provisioner :50054/TCP",
    "in indexer <- pod:reporter :50054/TCP",
    "in indexer <- pod:test :50054/TCP",
    "in indexer <- pod:reporter :50055/TCP",
    "in ingestor <- clients :50053/TCP",
    "in ingestor <- ns:monitoring :9466/TCP",
    "in provisioner <- clients :50052/TCP",
    "in provisioner <- ns:monitoring :9465/TCP",
    "in reporter <- clients :50056/TCP",
    "in reporter <- ns:monitoring :9469/TCP",
    "out indexer -> dns :53/TCP",
    "out indexer -> dns :53/UDP",
    "out ingestor -> dns :53/TCP",
    "out ingestor -> dns :53/UDP",
    "out ingestor -> pod:indexer :50054/TCP",
    "out provisioner -> cidr:0.0.0.0/0 :443/TCP",
    "out provisioner -> cidr:0.0.0.0/0 :6443/TCP",
    "out provisioner -> dns :53/TCP",
    "out provisioner -> dns :53/UDP",
    "out provisioner -> pod:indexer :50054/TCP",
    "out reporter -> cidr:0.0.0.0/0 :443/TCP",
    "out reporter -> cidr:0.0.0.0/0 :6443/TCP",
    "out reporter -> dns :53/TCP",
    "out reporter -> dns :53/UDP",
    "out reporter -> pod:indexer :50054/TCP",
    "out reporter -> pod:indexer :50055/TCP",
    "out test -> dns :53/TCP",
    "out test -> dns :53/UDP",
    "out test -> pod:indexer :50054/TCP",
    "out test -> pod:indexer :50055/TCP",
    "out test -> pod:ingestor :50053/TCP",
    "out test -> pod:provisioner :50052/TCP",
    "out test -> pod:reporter :50056/TCP",
];

/// A NetworkPolicy (Ingress and Egress) on every workload's pods; the
/// default install allows exactly [`DEFAULT_FLOWS`]; Elasticsearch adds
/// only egress to it and the flows of query's own pods (its clients, the
/// reporter, DNS, and its access records to the indexer), CloudWatch only
/// the ingestor's HTTPS egress.
fn network_policies(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    let policies: Vec<&Obj> = objects
        .iter()
        .filter(|o| o.kind() == "NetworkPolicy")
        .collect();
    for (obj, _) in workload_pods(objects) {
        let c = component(obj);
        let covered = policies.iter().any(|np| {
            np.value["spec"]["podSelector"]["matchLabels"][COMPONENT] == c
                && list(&np.value["spec"]["policyTypes"]).len() == 2
        });
        report.check(covered, || {
            format!(
                "{scenario}: {} has no NetworkPolicy for ingress and egress",
                obj.id()
            )
        });
    }
    let flows = flows(objects);
    let defaults: BTreeSet<String> = DEFAULT_FLOWS.iter().map(|s| (*s).to_owned()).collect();
    let extra: BTreeSet<&String> = flows.difference(&defaults).collect();
    let expected_extra: BTreeSet<String> = match scenario {
        "defaults"
        | "tls-cert-manager"
        | "tls-cert-manager-chart-roles"
        | "tls-existing-secrets"
        | "plaintext-insecure-listen" => BTreeSet::new(),
        "elasticsearch" => ["indexer", "query"]
            .iter()
            .map(|c| format!("out {c} -> cidr:0.0.0.0/0 :9200/TCP"))
            .chain([
                // With Elasticsearch, query has pods of its own.
                "in query <- clients :50055/TCP".to_owned(),
                "in query <- ns:monitoring :9468/TCP".to_owned(),
                "in query <- pod:reporter :50055/TCP".to_owned(),
                "in query <- pod:console :50055/TCP".to_owned(),
                "out console -> pod:query :50055/TCP".to_owned(),
                "out query -> dns :53/TCP".to_owned(),
                "out query -> dns :53/UDP".to_owned(),
                // ... and sends its access records to the indexer's
                // Service (on the embedded store, over localhost in the
                // indexer's pod: no flow).
                "in indexer <- pod:query :50054/TCP".to_owned(),
                "out query -> pod:indexer :50054/TCP".to_owned(),
                "out reporter -> pod:query :50055/TCP".to_owned(),
                "out test -> pod:query :50055/TCP".to_owned(),
            ])
            .collect(),
        // The servers that were not calling the API server now do, for
        // the reviews.
        "kubernetes-auth" => ["ingestor", "indexer", "console"]
            .iter()
            .flat_map(|c| [443, 6443].map(|port| format!("out {c} -> cidr:0.0.0.0/0 :{port}/TCP")))
            .collect(),
        // Browsers from the ingress controller's namespace only.
        "console-ingress" => ["in console <- ns:ingress-nginx :8080/TCP".to_owned()]
            .into_iter()
            .collect(),
        "cloudwatch-irsa" | "cloudwatch-secret" => {
            ["out ingestor -> cidr:0.0.0.0/0 :443/TCP".to_owned()]
                .into_iter()
                .collect()
        }
        // The scenarios that disable a service: only fewer flows.
        _ => return check_subset(scenario, values, &flows, &defaults, report),
    };
    let extra: BTreeSet<String> = extra.into_iter().cloned().collect();
    report.check(extra == expected_extra, || {
        format!(
            "{scenario}: NetworkPolicies allow {extra:?}, beyond the documented {expected_extra:?}"
        )
    });
    if scenario == "defaults" {
        report.check(flows == defaults, || {
            let missing: Vec<_> = defaults.difference(&flows).collect();
            format!("{scenario}: documented flows not allowed: {missing:?}")
        });
    }
}

/// With a service disabled: the flows of the Elasticsearch or default set,
/// none to or from the disabled service.
fn check_subset(
    scenario: &str,
    values: &Value,
    flows: &BTreeSet<String>,
    defaults: &BTreeSet<String>,
    report: &mut Report,
) {
    let es = values["global"]["store"]["type"] == "elasticsearch";
    for f in flows {
        let documented =
            defaults.contains(f) || (es && (f.contains("9200") || f.contains("query")));
        report.check(documented, || format!("{scenario}: undocumented flow {f}"));
    }
    for svc in SERVICES.iter().filter(|s| !enabled(values, s)) {
        let named = flows
            .iter()
            .any(|f| f.starts_with(&format!("in {svc} ")) || f.starts_with(&format!("out {svc} ")));
        report.check(!named, || {
            format!("{scenario}: flows of the disabled {svc}")
        });
    }
}

/// The console: its `[console]` table listening on the pod's address at
/// the container's `http` port and naming the release's Services (or the
/// URLs of the values), `https` with TLS; `[console.client]` with the CA,
/// its own certificate only when a service it calls requires one, never a
/// token file; the Service's `http` port; an Ingress iff
/// `console.ingress.enabled`, to that port, with the values' hosts and
/// TLS; a PodDisruptionBudget iff replicas > 1.
fn console(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    if !enabled(values, "console") {
        report.check(find(objects, "Ingress", "ar-console").is_none(), || {
            format!("{scenario}: an Ingress for the disabled console")
        });
        return;
    }
    let v = &values["console"];
    let tls = tls_on(values);
    let config = config_of(objects, "console");
    let at = format!("{scenario}: ar-console-config");
    let settings = table(config, "[console]").unwrap_or_default();
    let scheme = if tls { "https" } else { "http" };
    let mut expected = vec!["listen = \"0.0.0.0:8080\"".to_owned()];
    for (svc, port) in [
        ("query", 50055),
        ("reporter", 50056),
        ("ingestor", 50053),
        ("indexer", 50054),
    ] {
        let url = v["urls"][svc]
            .as_str()
            .map_or_else(|| format!("{scheme}://ar-{svc}:{port}"), str::to_owned);
        expected.push(format!("{svc}_url = \"{url}\""));
    }
    expected.push("session_ttl_mins = 480".to_owned());
    expected.push("max_sessions = 10000".to_owned());
    report.check(settings == expected, || {
        format!("{at}: [console] is {settings:?}, expected {expected:?}")
    });
    let client = table(config, "[console.client]");
    let mtls = client_certificates(values);
    let cert = tls
        && ["query", "reporter", "ingestor", "indexer"]
            .iter()
            .any(|s| mtls.iter().any(|m| m == s));
    let expected_client = tls.then(|| {
        let mut c = vec!["tls_ca = \"/etc/auditrail/tls/ca.crt\""];
        if cert {
            c.push("tls_cert = \"/etc/auditrail/tls/tls.crt\"");
            c.push("tls_key = \"/etc/auditrail/tls/tls.key\"");
        }
        c
    });
    report.check(client == expected_client, || {
        format!(
            "{at}: [console.client] is {client:?}, expected {expected_client:?} (the CA with \
             TLS, its certificate only under mTLS, never a token file)"
        )
    });
    let container = workload_pods(objects)
        .into_iter()
        .flat_map(|(_, pod)| list(&pod["containers"]))
        .find(|c| c["name"] == "console");
    report.check(
        container.is_some_and(|c| {
            list(&c["ports"])
                .iter()
                .any(|p| p["name"] == "http" && p["containerPort"] == 8080)
        }),
        || format!("{scenario}: the console container has no http port 8080"),
    );
    let service = find(objects, "Service", "ar-console");
    let service_port = v["service"]["port"].as_u64().unwrap_or(8080);
    report.check(
        service.is_some_and(|s| {
            list(&s.value["spec"]["ports"]).iter().any(|p| {
                p["name"] == "http" && p["port"] == service_port && p["targetPort"] == "http"
            })
        }),
        || format!("{scenario}: Service ar-console has no http port {service_port}"),
    );
    console_ingress(scenario, v, objects, report);
    let replicas = v["replicas"].as_u64().unwrap_or(1);
    report.check(
        (replicas > 1) == find(objects, "PodDisruptionBudget", "ar-console").is_some(),
        || format!("{scenario}: ar-console: a PodDisruptionBudget iff replicas > 1"),
    );
}

/// The console's Ingress iff `console.ingress.enabled`, routing the
/// values' hosts to the Service's `http` port with the values' TLS.
fn console_ingress(scenario: &str, v: &Value, objects: &[Obj], report: &mut Report) {
    let ingress = find(objects, "Ingress", "ar-console");
    let wanted = v["ingress"]["enabled"] == true;
    report.check(ingress.is_some() == wanted, || {
        format!("{scenario}: an Ingress ar-console iff console.ingress.enabled")
    });
    if let Some(ingress) = ingress {
        let spec = &ingress.value["spec"];
        let hosts: Vec<&Value> = list(&spec["rules"]).iter().map(|r| &r["host"]).collect();
        let expected_hosts: Vec<&Value> = list(&v["ingress"]["hosts"]).iter().collect();
        let backends_ok = list(&spec["rules"]).iter().all(|r| {
            list(&r["http"]["paths"]).iter().all(|p| {
                p["backend"]["service"]["name"] == "ar-console"
                    && p["backend"]["service"]["port"]["name"] == "http"
            })
        });
        report.check(
            hosts == expected_hosts && backends_ok && spec["tls"] == v["ingress"]["tls"],
            || {
                format!(
                    "{scenario}: the Ingress does not route the hosts {expected_hosts:?} to \
                     ar-console's http port with the values' TLS: {spec}"
                )
            },
        );
    }
}

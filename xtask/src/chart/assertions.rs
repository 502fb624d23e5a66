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
    tests(scenario, values, objects, report);
    network_policies(scenario, values, objects, report);
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
/// probe speaks plaintext only).
fn probes(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    let tls = values["global"]["tls"]["enabled"] == true;
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
            for probe in ["readinessProbe", "livenessProbe"] {
                let p = &c[probe];
                let ok = if tls {
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

/// With TLS: every auditrail container mounts its certificate, every config
/// has `[server.tls]`, the ingestor's has `[client]` for mTLS to the
/// indexer; cert-manager: one Certificate per enabled service.
fn tls(scenario: &str, values: &Value, objects: &[Obj], report: &mut Report) {
    let on = values["global"]["tls"]["enabled"] == true;
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
    for svc in SERVICES.iter().filter(|s| enabled(values, s)) {
        let config = find(objects, "ConfigMap", &format!("ar-{svc}-config"))
            .and_then(|c| c.value["data"]["auditrail.toml"].as_str())
            .unwrap_or("");
        report.check(config.contains("[server.tls]") == on, || {
            format!(
                "{scenario}: ar-{svc}-config: [server.tls] must be there iff global.tls.enabled"
            )
        });
        if *svc == "ingestor" {
            report.check(
                config.contains("tls_cert = ") == on
                    && (!on || config.contains("indexer_url = \"https://")),
                || format!("{scenario}: the ingestor's config lacks mTLS to the indexer"),
            );
        }
        let cert_manager = on && values["global"]["tls"]["certManager"]["enabled"] == true;
        report.check(
            find(objects, "Certificate", &format!("ar-{svc}")).is_some() == cert_manager,
            || format!("{scenario}: Certificate ar-{svc} iff cert-manager"),
        );
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
    }
}

/// A peer of a NetworkPolicy rule, as the flows below name it.
fn peer(p: &Value) -> String {
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
                for p in list(&rule[arrow]) {
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
    "in indexer <- clients :50055/TCP",
    "in indexer <- ns:monitoring :9467/TCP",
    "in indexer <- ns:monitoring :9468/TCP",
    "in indexer <- pod:ingestor :50054/TCP",
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
    "out reporter -> cidr:0.0.0.0/0 :443/TCP",
    "out reporter -> cidr:0.0.0.0/0 :6443/TCP",
    "out reporter -> dns :53/TCP",
    "out reporter -> dns :53/UDP",
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
/// only egress to it, CloudWatch only the ingestor's HTTPS egress.
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
        "defaults" | "tls-cert-manager" | "tls-existing-secrets" => BTreeSet::new(),
        "elasticsearch" => ["indexer", "query"]
            .iter()
            .map(|c| format!("out {c} -> cidr:0.0.0.0/0 :9200/TCP"))
            .chain([
                // With Elasticsearch, query has pods of its own.
                "in query <- clients :50055/TCP".to_owned(),
                "in query <- ns:monitoring :9468/TCP".to_owned(),
                "in query <- pod:reporter :50055/TCP".to_owned(),
                "out query -> dns :53/TCP".to_owned(),
                "out query -> dns :53/UDP".to_owned(),
                "out reporter -> pod:query :50055/TCP".to_owned(),
                "out test -> pod:query :50055/TCP".to_owned(),
            ])
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

//! What a report says, computed with no I/O from what the run read: the
//! definition, the interval, the snapshot replay starts from and the
//! trail's writes of tracked resources.
//!
//! - **policy-audit**: the successful changes (`Event::is_version`, plus
//!   `deletecollection`, counted per deleted object) of network policy
//!   resources (Kubernetes NetworkPolicy; Calico tiers, network policies,
//!   global, staged, network sets) in [start, end), per verb, with the
//!   events themselves (original bytes). Namespaced policies count only
//!   in the namespaces in scope (`endpoints.namespaces`; a namespace
//!   selector is evaluated on the namespaces as replayed at the interval's
//!   end).
//! - **inventory** and **network-access**: the configuration is replayed
//!   to the interval's start (`auditrail-replay`), then through every
//!   change in the interval; after each instant that changed it the policy
//!   calculator's answers (`auditrail-protection`) are brought up to date
//!   and the endpoints in scope are folded with the "ever" rule: an
//!   endpoint is in scope if it existed at any instant, protected only if
//!   protected at every instant it existed, exposed (internet, other
//!   namespaces) if exposed at any. The calculator works out again only
//!   the answers a change can affect (`auditrail_protection::Tracker`),
//!   and only an answer that differs from the one last folded for its
//!   endpoint is folded again (folding the same answer twice changes
//!   nothing): the same report as calculating everything at every
//!   instant, which the tests keep as the reference.
//!
//! Whatever could not be used is a warning of the report, never dropped
//! silently: no snapshot, writes without their object, unreadable policies.

use std::collections::{BTreeMap, BTreeSet};

use auditrail_calico_selector::{Labels, Selector};
use auditrail_event::CALICO_API_GROUP;
use auditrail_protection::model::Cluster;
use auditrail_protection::{
    Calculation, Changed, EndpointId, EndpointReport, Ever, Tracker, calculate,
};
use auditrail_proto::v1;
use auditrail_replay::{Applied, Recorded, Replayer, Snapshot, State, tracked};
use jiff::Timestamp;

use crate::error::ReportError;

/// What a run read, for one report.
#[derive(Debug)]
pub struct Input<'a> {
    /// The report type.
    pub report_type: v1::ReportType,
    /// Which endpoints (and policy namespaces) are in scope.
    pub endpoints: Option<&'a v1::EndpointsSelection>,
    /// The cluster (part of every event id).
    pub cluster: &'a str,
    /// Interval start, inclusive.
    pub start: Timestamp,
    /// Interval end, exclusive.
    pub end: Timestamp,
    /// Where replay starts; `None`: empty, at the oldest event.
    pub snapshot: Option<&'a Snapshot>,
    /// The trail's writes of tracked resources from the snapshot (or the
    /// oldest event) to the interval's end, with `raw`.
    pub events: &'a [v1::AuditEvent],
}

/// A computed report.
#[derive(Debug, Default)]
pub struct Output {
    /// The contents.
    pub contents: v1::ReportContents,
    /// The summary (also inside the contents).
    pub summary: v1::ReportSummary,
    /// What the reader must know.
    pub warnings: Vec<String>,
    /// Events read from the trail.
    pub events_replayed: u64,
}

/// The scope of a definition, parsed.
struct Scope {
    endpoint: Option<Selector>,
    namespace_names: BTreeSet<String>,
    namespace_selector: Option<Selector>,
    account_names: BTreeSet<String>,
    account_selector: Option<Selector>,
}

fn parse_selector(field: &str, text: &str) -> Result<Option<Selector>, ReportError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    auditrail_calico_selector::parse(text)
        .map(Some)
        .map_err(|e| ReportError::invalid(field, e))
}

impl Scope {
    fn new(selection: Option<&v1::EndpointsSelection>) -> Result<Self, ReportError> {
        let default = v1::EndpointsSelection::default();
        let s = selection.unwrap_or(&default);
        let ns = s.namespaces.clone().unwrap_or_default();
        let sa = s.service_accounts.clone().unwrap_or_default();
        Ok(Self {
            endpoint: parse_selector("definition.endpoints.selector", &s.selector)?,
            namespace_names: ns.names.into_iter().collect(),
            namespace_selector: parse_selector(
                "definition.endpoints.namespaces.selector",
                &ns.selector,
            )?,
            account_names: sa.names.into_iter().collect(),
            account_selector: parse_selector(
                "definition.endpoints.service_accounts.selector",
                &sa.selector,
            )?,
        })
    }

    fn restricts_namespaces(&self) -> bool {
        !self.namespace_names.is_empty() || self.namespace_selector.is_some()
    }

    /// Whether namespace `ns` (with `labels`, when it exists) is in scope.
    fn namespace(&self, ns: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
        if !self.namespace_names.is_empty() && !self.namespace_names.contains(ns) {
            return false;
        }
        match &self.namespace_selector {
            None => true,
            Some(sel) => labels.is_some_and(|l| sel.matches(l)),
        }
    }

    fn endpoint(&self, ep: &EndpointReport, cluster: &Cluster) -> bool {
        if let Some(sel) = &self.endpoint
            && !sel.matches(&ep.labels)
        {
            return false;
        }
        if self.restricts_namespaces() {
            let ns = &ep.id.namespace;
            if ns.is_empty() || !self.namespace(ns, cluster.namespaces.get(ns)) {
                return false;
            }
        }
        if !self.account_names.is_empty() && !self.account_names.contains(&ep.service_account) {
            return false;
        }
        if let Some(sel) = &self.account_selector {
            let key = (ep.id.namespace.clone(), ep.service_account.clone());
            if !cluster
                .service_accounts
                .get(&key)
                .is_some_and(|labels| sel.matches(&labels as &dyn Labels))
            {
                return false;
            }
        }
        true
    }
}

/// Whether a tracked resource is a network policy resource (what a
/// policy-audit report counts).
fn is_policy_resource(resource: &str, group: &str) -> bool {
    match tracked(resource, group) {
        Some(t) if t.api_group == CALICO_API_GROUP => t.resource != "hostendpoints",
        Some(t) => t.resource == "networkpolicies",
        None => false,
    }
}

/// How the endpoints' answers are worked out through the interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// Only what each change can affect.
    Incremental,
    /// Everything after every instant: the reference the tests compare
    /// the incremental way with.
    #[cfg_attr(not(test), allow(dead_code))]
    Full,
}

/// Computes the report.
pub fn compute(input: &Input<'_>) -> Result<Output, ReportError> {
    compute_with(input, Method::Incremental)
}

fn compute_with(input: &Input<'_>, method: Method) -> Result<Output, ReportError> {
    let scope = Scope::new(input.endpoints)?;
    let mut warnings = Vec::new();
    if input.snapshot.is_none() {
        warnings.push(format!(
            "no snapshot of cluster {:?} was taken at or before the interval's start: replay started empty at the oldest event, so objects created before the trail began are missing",
            input.cluster
        ));
    }
    let mut records = Vec::with_capacity(input.events.len());
    for event in input.events {
        match Recorded::parse(input.cluster, &event.raw) {
            Ok(rec) => records.push((rec, event)),
            Err(e) => warnings.push(format!("event {} cannot be read: {e}", event.id)),
        }
    }
    records.sort_by(|a, b| {
        let key = |r: &Recorded<'_>| {
            (
                r.event.stage_timestamp,
                r.event.request_received_timestamp,
                r.id,
            )
        };
        key(&a.0).cmp(&key(&b.0))
    });
    let mut replayer = match input.snapshot {
        Some(s) => Replayer::from_snapshot(s)
            .map_err(|e| ReportError::Internal(format!("stored snapshot: {e}")))?,
        None => Replayer::new(),
    };
    let from = input.snapshot.map(|s| s.request_start);
    let mut output = match input.report_type {
        v1::ReportType::PolicyAudit => {
            policy_audit(input, &scope, &records, &mut replayer, from, &mut warnings)
        }
        v1::ReportType::Inventory | v1::ReportType::NetworkAccess => endpoints(
            input,
            &scope,
            &records,
            &mut replayer,
            from,
            method,
            &mut warnings,
        ),
        v1::ReportType::Unspecified => {
            return Err(ReportError::invalid(
                "definition.report_type",
                "required: policy-audit, inventory or network-access",
            ));
        }
    };
    for w in replayer.warnings() {
        warnings.push(w.to_string());
    }
    let mut seen = BTreeSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    output.warnings = warnings;
    Ok(output)
}

fn time_of(rec: &Recorded<'_>) -> Option<Timestamp> {
    rec.time()
}

fn policy_audit(
    input: &Input<'_>,
    scope: &Scope,
    records: &[(Recorded<'_>, &v1::AuditEvent)],
    replayer: &mut Replayer,
    from: Option<Timestamp>,
    warnings: &mut Vec<String>,
) -> Output {
    // The namespaces as they were at the end, for a namespace selector.
    if scope.namespace_selector.is_some() {
        for (rec, _) in records {
            match time_of(rec) {
                Some(t) if t < input.end && from.is_none_or(|f| t >= f) => {
                    replayer.apply(rec);
                }
                _ => {}
            }
        }
    }
    let cluster = Cluster::from_state(replayer.state());
    let mut summary = v1::PolicyAuditSummary::default();
    let mut events = Vec::new();
    for (rec, event) in records {
        let Some(t) = time_of(rec) else { continue };
        if t < input.start || t >= input.end {
            continue;
        }
        let e = &rec.event;
        let Some(r) = e.object_ref.as_ref() else {
            continue;
        };
        let resource = r.resource.as_deref().unwrap_or("");
        let group = r.api_group.as_deref().unwrap_or("");
        if !is_policy_resource(resource, group) {
            continue;
        }
        let namespaced = tracked(resource, group).is_some_and(|t| t.namespaced);
        if namespaced && scope.restricts_namespaces() {
            let ns = r.namespace.as_deref().unwrap_or("");
            if !scope.namespace(ns, cluster.namespaces.get(ns)) {
                continue;
            }
        }
        let counted = if e.verb == "deletecollection" {
            let ok = e.subresource().is_empty()
                && e.stage == Some(auditrail_event::Stage::ResponseComplete)
                && e.response_code().is_some_and(|c| (200..300).contains(&c))
                && !e.is_dry_run();
            if ok {
                let items = e
                    .response_object
                    .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok())
                    .and_then(|v| v.get("items").and_then(|i| i.as_array()).map(Vec::len));
                if items.is_none() {
                    warnings.push(format!(
                        "event {} (deletecollection of {resource}) has no list of what it deleted; counted as one deletion",
                        rec.id
                    ));
                }
                summary.deleted += items.unwrap_or(1) as u64;
            }
            ok
        } else if e.is_version() {
            match e.verb.as_ref() {
                "create" => summary.created += 1,
                "delete" => summary.deleted += 1,
                _ => summary.modified += 1,
            }
            true
        } else {
            false
        };
        if counted {
            events.push((*event).clone());
        }
    }
    summary.total = summary.created + summary.modified + summary.deleted;
    let report_summary = v1::ReportSummary {
        kind: Some(v1::report_summary::Kind::PolicyAudit(summary)),
    };
    Output {
        contents: v1::ReportContents {
            kind: Some(v1::report_contents::Kind::PolicyAudit(
                v1::PolicyAuditContents {
                    summary: Some(summary),
                    events,
                },
            )),
        },
        summary: report_summary,
        ..Output::default()
    }
}

/// The calculation of `state` restricted to the endpoints in scope.
fn scoped(state: &State, scope: &Scope, warnings: &mut BTreeSet<String>) -> Calculation {
    let mut calc = calculate(state);
    let cluster = Cluster::from_state(state);
    calc.endpoints.retain(|ep| scope.endpoint(ep, &cluster));
    for w in &calc.warnings {
        warnings.insert(format!("policy left out: {w}"));
    }
    calc
}

/// The "ever" fold fed from a [`Tracker`]: after each instant, the
/// answers that changed and are in scope, each unless it is the answer
/// last folded for its endpoint.
struct Folder {
    ever: Ever,
    last: BTreeMap<EndpointId, EndpointReport>,
    generation: Option<u64>,
}

impl Folder {
    fn fold(&mut self, tracker: &mut Tracker, scope: &Scope, warnings: &mut BTreeSet<String>) {
        let changed = tracker.take_changed();
        let cluster = tracker.cluster();
        let mut add = |report: &EndpointReport| {
            if scope.endpoint(report, cluster) && self.last.get(&report.id) != Some(report) {
                self.ever.add_report(report);
                self.last.insert(report.id.clone(), report.clone());
            }
        };
        match &changed {
            Changed::All => tracker.reports().for_each(&mut add),
            Changed::Some(ids) => ids
                .iter()
                .filter_map(|id| tracker.report(id))
                .for_each(&mut add),
        }
        if self.generation != Some(tracker.generation()) {
            self.generation = Some(tracker.generation());
            for w in tracker.warnings() {
                warnings.insert(format!("policy left out: {w}"));
            }
        }
    }
}

/// The endpoints' answers through the interval, folded.
enum Fold {
    Incremental(Box<Tracker>, Folder),
    Full(Ever),
}

impl Fold {
    fn new(method: Method, state: &State, scope: &Scope, warnings: &mut BTreeSet<String>) -> Self {
        match method {
            Method::Incremental => {
                let mut tracker = Box::new(Tracker::new(state));
                let mut folder = Folder {
                    ever: Ever::new(),
                    last: BTreeMap::new(),
                    generation: None,
                };
                folder.fold(&mut tracker, scope, warnings);
                Self::Incremental(tracker, folder)
            }
            Method::Full => {
                let mut ever = Ever::new();
                ever.add(&scoped(state, scope, warnings));
                Self::Full(ever)
            }
        }
    }

    /// The state changed (the replayer says which objects).
    fn add(&mut self, replayer: &mut Replayer, scope: &Scope, warnings: &mut BTreeSet<String>) {
        match self {
            Self::Incremental(tracker, folder) => {
                let keys = replayer.take_changed();
                tracker.update(replayer.state(), &keys);
                folder.fold(tracker, scope, warnings);
            }
            Self::Full(ever) => ever.add(&scoped(replayer.state(), scope, warnings)),
        }
    }

    fn finish(self) -> Vec<EndpointReport> {
        match self {
            Self::Incremental(_, folder) => folder.ever.finish(),
            Self::Full(ever) => ever.finish(),
        }
    }
}

fn endpoints(
    input: &Input<'_>,
    scope: &Scope,
    records: &[(Recorded<'_>, &v1::AuditEvent)],
    replayer: &mut Replayer,
    from: Option<Timestamp>,
    method: Method,
    warnings: &mut Vec<String>,
) -> Output {
    let mut policy_warnings = BTreeSet::new();
    let mut no_time = 0usize;
    let mut i = 0;
    // Up to the interval's start.
    while i < records.len() {
        let rec = &records[i].0;
        match time_of(rec) {
            None => no_time += 1,
            Some(t) if t >= input.start => break,
            Some(t) if from.is_some_and(|f| t < f) => {}
            Some(_) => {
                replayer.apply(rec);
            }
        }
        i += 1;
    }
    replayer.track_changes();
    let mut fold = Fold::new(method, replayer.state(), scope, &mut policy_warnings);
    // Through the interval: one update per instant that changed it.
    let mut changed = false;
    while i < records.len() {
        let rec = &records[i].0;
        let t = time_of(rec);
        if t.is_some_and(|t| t >= input.end) {
            break;
        }
        if t.is_none() {
            no_time += 1;
        } else {
            changed |= matches!(replayer.apply(rec), Applied::Put | Applied::Removed(1..));
        }
        let next_time = records.get(i + 1).and_then(|(r, _)| time_of(r));
        if changed && next_time != t {
            fold.add(replayer, scope, &mut policy_warnings);
            changed = false;
        }
        i += 1;
    }
    if changed {
        fold.add(replayer, scope, &mut policy_warnings);
    }
    if no_time > 0 {
        warnings.push(format!(
            "{no_time} events have no timestamp and could not be placed in time"
        ));
    }
    warnings.extend(policy_warnings);
    let reports = fold.finish();
    let entries: Vec<v1::EndpointEntry> = reports.iter().map(entry).collect();
    let summary = summarize(&entries);
    let contents = v1::EndpointsContents {
        summary: Some(summary.clone()),
        endpoints: entries,
    };
    let (contents, summary) = if input.report_type == v1::ReportType::Inventory {
        (
            v1::report_contents::Kind::Inventory(contents),
            v1::report_summary::Kind::Inventory(summary),
        )
    } else {
        (
            v1::report_contents::Kind::NetworkAccess(contents),
            v1::report_summary::Kind::NetworkAccess(summary),
        )
    };
    Output {
        contents: v1::ReportContents {
            kind: Some(contents),
        },
        summary: v1::ReportSummary {
            kind: Some(summary),
        },
        ..Output::default()
    }
}

fn entry(r: &EndpointReport) -> v1::EndpointEntry {
    v1::EndpointEntry {
        kind: r.id.kind.as_str().to_owned(),
        namespace: r.id.namespace.clone(),
        name: r.id.name.clone(),
        service_account: r.service_account.clone(),
        ingress_protected: r.flags.ingress_protected,
        egress_protected: r.flags.egress_protected,
        ingress_from_internet: r.flags.ingress_from_internet,
        egress_to_internet: r.flags.egress_to_internet,
        ingress_from_other_namespaces: r.flags.ingress_from_other_namespaces,
        egress_to_other_namespaces: r.flags.egress_to_other_namespaces,
        applied_policies: r
            .applied_policies
            .iter()
            .map(|a| v1::PolicyRef {
                kind: a.policy.kind.clone(),
                api_group: a.policy.api_group.clone(),
                namespace: a.policy.namespace.clone(),
                name: a.policy.name.clone(),
                tier: a.policy.tier.clone(),
            })
            .collect(),
        services: r
            .services
            .iter()
            .map(|s| v1::NamespacedName {
                namespace: s.namespace.clone(),
                name: s.name.clone(),
            })
            .collect(),
    }
}

fn count(counts: &mut v1::EndpointCounts, e: &v1::EndpointEntry) {
    counts.total += 1;
    counts.ingress_protected += u64::from(e.ingress_protected);
    counts.egress_protected += u64::from(e.egress_protected);
    counts.ingress_from_internet += u64::from(e.ingress_from_internet);
    counts.egress_to_internet += u64::from(e.egress_to_internet);
    counts.ingress_from_other_namespaces += u64::from(e.ingress_from_other_namespaces);
    counts.egress_to_other_namespaces += u64::from(e.egress_to_other_namespaces);
}

/// The summary of a set of endpoint entries.
pub fn summarize(entries: &[v1::EndpointEntry]) -> v1::EndpointsSummary {
    let mut total = v1::EndpointCounts::default();
    let mut per_ns: BTreeMap<&str, v1::EndpointCounts> = BTreeMap::new();
    let mut accounts = BTreeSet::new();
    let mut services = BTreeSet::new();
    for e in entries {
        count(&mut total, e);
        if !e.namespace.is_empty() {
            count(per_ns.entry(&e.namespace).or_default(), e);
        }
        if !e.service_account.is_empty() {
            accounts.insert((&e.namespace, &e.service_account));
        }
        for s in &e.services {
            services.insert((&s.namespace, &s.name));
        }
    }
    v1::EndpointsSummary {
        endpoints: Some(total),
        namespaces_in_scope: per_ns.len() as u64,
        service_accounts_in_scope: accounts.len() as u64,
        services_in_scope: services.len() as u64,
        namespaces: per_ns
            .into_iter()
            .map(|(ns, counts)| v1::NamespaceSummary {
                namespace: ns.to_owned(),
                counts: Some(counts),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A write event of `verb` on `resource` (group, namespace, name) at
    /// `at`, answered `code` with `object`.
    #[allow(clippy::too_many_arguments, clippy::needless_pass_by_value)]
    fn event(
        verb: &str,
        resource: &str,
        group: &str,
        namespace: &str,
        name: &str,
        at: &str,
        code: u16,
        object: Value,
    ) -> v1::AuditEvent {
        let mut object_ref = json!({"resource": resource, "name": name, "apiVersion": "v1"});
        if !group.is_empty() {
            object_ref["apiGroup"] = json!(group);
        }
        if !namespace.is_empty() {
            object_ref["namespace"] = json!(namespace);
        }
        let line = json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
            "auditID": format!("{verb}-{name}-{at}"), "stage": "ResponseComplete",
            "requestURI": format!("/x/{resource}/{name}"), "verb": verb,
            "user": {"username": "u"}, "objectRef": object_ref,
            "responseStatus": {"code": code}, "responseObject": object,
            "requestReceivedTimestamp": at, "stageTimestamp": at
        })
        .to_string();
        v1::AuditEvent {
            id: auditrail_event::EventId::compute("c", line.as_bytes()).to_hex(),
            raw: line.into_bytes().into(),
            verb: verb.to_owned(),
            ..Default::default()
        }
    }

    fn netpol(ns: &str, name: &str, rv: &str, app: &str) -> Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": name, "namespace": ns, "resourceVersion": rv},
               "spec": {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Ingress"],
                        "ingress": [{"from": [{"podSelector": {}}]}]}})
    }

    fn pod(ns: &str, name: &str, rv: &str, app: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns, "resourceVersion": rv, "labels": {"app": app}},
               "spec": {"containers": []}})
    }

    fn input<'a>(
        report_type: v1::ReportType,
        endpoints: Option<&'a v1::EndpointsSelection>,
        events: &'a [v1::AuditEvent],
        snapshot: Option<&'a Snapshot>,
    ) -> Input<'a> {
        Input {
            report_type,
            endpoints,
            cluster: "c",
            start: t("2026-01-01T10:00:00Z"),
            end: t("2026-01-01T11:00:00Z"),
            snapshot,
            events,
        }
    }

    #[test]
    #[allow(clippy::too_many_lines, reason = "one table of events")]
    fn policy_audit_counts_successful_changes_in_the_interval_and_scope() {
        let np = "networking.k8s.io";
        let events = vec![
            // Before the interval: not counted.
            event(
                "create",
                "networkpolicies",
                np,
                "a",
                "p0",
                "2026-01-01T09:59:59Z",
                201,
                netpol("a", "p0", "1", "x"),
            ),
            event(
                "create",
                "networkpolicies",
                np,
                "a",
                "p1",
                "2026-01-01T10:00:00Z",
                201,
                netpol("a", "p1", "2", "x"),
            ),
            event(
                "patch",
                "networkpolicies",
                np,
                "b",
                "p2",
                "2026-01-01T10:10:00Z",
                200,
                netpol("b", "p2", "3", "x"),
            ),
            // Failed: not counted.
            event(
                "update",
                "networkpolicies",
                np,
                "a",
                "p1",
                "2026-01-01T10:11:00Z",
                403,
                json!({"kind": "Status"}),
            ),
            event(
                "delete",
                "globalnetworkpolicies",
                "projectcalico.org",
                "",
                "g1",
                "2026-01-01T10:20:00Z",
                200,
                json!({"kind": "Status"}),
            ),
            event(
                "deletecollection",
                "networksets",
                "projectcalico.org",
                "a",
                "",
                "2026-01-01T10:30:00Z",
                200,
                json!({"kind": "NetworkSetList", "items": [{"metadata": {"name": "s1"}}, {"metadata": {"name": "s2"}}]}),
            ),
            // Not a policy resource.
            event(
                "create",
                "pods",
                "",
                "a",
                "web",
                "2026-01-01T10:40:00Z",
                201,
                pod("a", "web", "9", "x"),
            ),
            // At the end: outside [start, end).
            event(
                "create",
                "tiers",
                "projectcalico.org",
                "",
                "t",
                "2026-01-01T11:00:00Z",
                201,
                json!({"kind": "Tier", "metadata": {"name": "t"}}),
            ),
        ];
        let out = compute(&input(v1::ReportType::PolicyAudit, None, &events, None)).unwrap();
        let Some(v1::report_summary::Kind::PolicyAudit(s)) = out.summary.kind else {
            panic!("{:?}", out.summary)
        };
        assert_eq!((s.created, s.modified, s.deleted, s.total), (1, 1, 3, 5));
        let Some(v1::report_contents::Kind::PolicyAudit(c)) = out.contents.kind else {
            panic!()
        };
        assert_eq!(c.events.len(), 4, "the deletecollection is one event");
        assert!(
            out.warnings[0].contains("no snapshot"),
            "{:?}",
            out.warnings
        );
        // Scoped to namespace a: b's patch is left out, the global delete kept.
        let scope = v1::EndpointsSelection {
            namespaces: Some(v1::NamesAndLabelsMatch {
                names: vec!["a".into()],
                selector: String::new(),
            }),
            ..Default::default()
        };
        let out = compute(&input(
            v1::ReportType::PolicyAudit,
            Some(&scope),
            &events,
            None,
        ))
        .unwrap();
        let Some(v1::report_summary::Kind::PolicyAudit(s)) = out.summary.kind else {
            panic!()
        };
        assert_eq!((s.created, s.modified, s.deleted), (1, 0, 3));
    }

    #[test]
    fn an_endpoint_unprotected_at_any_instant_is_unprotected() {
        let snapshot = Snapshot {
            request_start: t("2026-01-01T00:00:00Z"),
            request_completion: t("2026-01-01T00:00:00Z"),
            objects: vec![
                pod("a", "web", "1", "web"),
                pod("a", "db", "2", "db"),
                netpol("a", "p", "3", "web"),
            ],
        };
        let events = vec![
            // The policy is deleted within the interval, then a new pod comes.
            event(
                "delete",
                "networkpolicies",
                "networking.k8s.io",
                "a",
                "p",
                "2026-01-01T10:30:00Z",
                200,
                json!({"kind": "Status"}),
            ),
            event(
                "create",
                "pods",
                "",
                "b",
                "late",
                "2026-01-01T10:45:00Z",
                201,
                pod("b", "late", "5", "web"),
            ),
            // After the end: not seen.
            event(
                "create",
                "pods",
                "",
                "b",
                "later",
                "2026-01-01T11:30:00Z",
                201,
                pod("b", "later", "6", "web"),
            ),
        ];
        let out = compute(&input(
            v1::ReportType::Inventory,
            None,
            &events,
            Some(&snapshot),
        ))
        .unwrap();
        let Some(v1::report_contents::Kind::Inventory(c)) = out.contents.kind else {
            panic!()
        };
        let names: Vec<&str> = c.endpoints.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["db", "web", "late"]);
        let web = &c.endpoints[1];
        assert!(!web.ingress_protected, "protected only until 10:30");
        assert!(web.ingress_from_internet);
        assert_eq!(
            web.applied_policies.len(),
            1,
            "the policy applied at some instant"
        );
        let summary = c.summary.unwrap();
        assert_eq!(summary.namespaces_in_scope, 2);
        assert_eq!(summary.endpoints.unwrap().total, 3);
        // Before the delete, over an interval that ends at 10:30, it is.
        let mut before = input(v1::ReportType::Inventory, None, &events, Some(&snapshot));
        before.end = t("2026-01-01T10:30:00Z");
        let out = compute(&before).unwrap();
        let Some(v1::report_contents::Kind::Inventory(c)) = out.contents.kind else {
            panic!()
        };
        let web = c.endpoints.iter().find(|e| e.name == "web").unwrap();
        assert!(web.ingress_protected && !web.ingress_from_internet);
        // A selector narrows the endpoints.
        let scope = v1::EndpointsSelection {
            selector: "app == 'db'".into(),
            ..Default::default()
        };
        let out = compute(&input(
            v1::ReportType::Inventory,
            Some(&scope),
            &events,
            Some(&snapshot),
        ))
        .unwrap();
        let Some(v1::report_contents::Kind::Inventory(c)) = out.contents.kind else {
            panic!()
        };
        assert_eq!(c.endpoints.len(), 1);
        assert_eq!(c.endpoints[0].name, "db");
    }

    #[test]
    fn a_write_without_its_object_is_a_warning_naming_the_event() {
        let mut e = event(
            "create",
            "pods",
            "",
            "a",
            "x",
            "2026-01-01T09:00:00Z",
            201,
            Value::Null,
        );
        let mut line: Value = serde_json::from_slice(&e.raw).unwrap();
        line.as_object_mut().unwrap().remove("responseObject");
        let raw = line.to_string();
        e.id = auditrail_event::EventId::compute("c", raw.as_bytes()).to_hex();
        e.raw = raw.into_bytes().into();
        let events = [e];
        let out = compute(&input(v1::ReportType::Inventory, None, &events, None)).unwrap();
        assert!(
            out.warnings
                .iter()
                .any(|w| w.contains(&events[0].id) && w.contains("responseObject")),
            "{:?}",
            out.warnings
        );
    }

    /// A small deterministic generator for the random histories.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            usize::try_from(self.0 % n as u64).unwrap()
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    /// One random write of a tracked object: (verb, resource, group,
    /// namespace, name, object).
    #[allow(clippy::too_many_lines, reason = "one case per kind of change")]
    fn random_write(
        rng: &mut Rng,
        rv: u64,
    ) -> (String, &'static str, &'static str, String, String, Value) {
        // "c" has no Namespace object: it exists only through its pods.
        let nss = ["a", "b", "c"];
        let apps = ["web", "db", "api"];
        let ns = rng.pick(&nss).to_owned();
        let rv_s = rv.to_string();
        let delete = rng.below(4) == 0;
        let verb = |create: bool| {
            if delete {
                "delete"
            } else if create {
                "create"
            } else {
                "update"
            }
        };
        match rng.below(12) {
            0..=3 => {
                let name = format!("p{}", rng.below(8));
                let app = rng.pick(&apps);
                let mut object = json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": ns, "resourceVersion": rv_s,
                                 "labels": {"app": app}},
                    "spec": {"serviceAccountName": rng.pick(&["sa1", "sa2", ""])}});
                if rng.below(10) == 0 {
                    object["spec"]["hostNetwork"] = json!(true);
                }
                if rng.below(3) == 0 {
                    object["metadata"]["labels"]["env"] = json!(rng.pick(&["prod", "dev"]));
                }
                (verb(true).into(), "pods", "", ns, name, object)
            }
            4 => {
                let name = format!("np{}", rng.below(4));
                let peer = match rng.below(4) {
                    0 => json!({"namespaceSelector": {"matchLabels": {"env": "prod"}}}),
                    1 => json!({"podSelector": {"matchLabels": {"app": rng.pick(&apps)}}}),
                    2 => json!({"ipBlock": {"cidr": rng.pick(&["10.0.0.0/8", "0.0.0.0/0"])}}),
                    _ => json!({"namespaceSelector": {}}),
                };
                let object = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": name, "namespace": ns, "resourceVersion": rv_s},
                    "spec": {"podSelector": {"matchLabels": {"app": rng.pick(&apps)}},
                             "policyTypes": if rng.below(2) == 0 { json!(["Ingress"]) } else { json!(["Ingress", "Egress"]) },
                             "ingress": [{"from": [peer]}],
                             "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}});
                (
                    verb(false).into(),
                    "networkpolicies",
                    "networking.k8s.io",
                    ns,
                    name,
                    object,
                )
            }
            5 => {
                let name = format!("cnp{}", rng.below(3));
                let source = match rng.below(4) {
                    0 => json!({"selector": format!("app == '{}'", rng.pick(&apps))}),
                    1 => {
                        json!({"serviceAccounts": {"names": ["sa1"]}, "namespaceSelector": "all()"})
                    }
                    2 => json!({"selector": "has(env)", "namespaceSelector": "env == 'prod'"}),
                    _ => json!({"nets": ["8.8.8.0/24"]}),
                };
                let selector = if rng.below(8) == 0 {
                    "app =="
                } else {
                    rng.pick(&["all()", "app == 'web'", "has(env)"])
                };
                let mut spec = json!({"tier": rng.pick(&["default", "sec"]), "order": rng.below(3),
                    "selector": selector,
                    "ingress": [{"action": "Allow", "source": source}],
                    "egress": [{"action": "Allow", "destination": {"selector": "all()"}}]});
                if rng.below(3) == 0 {
                    spec["serviceAccountSelector"] = json!("role == 'x'");
                }
                let staged = rng.below(4) == 0;
                let object = json!({"apiVersion": "projectcalico.org/v3",
                    "kind": if staged { "StagedNetworkPolicy" } else { "NetworkPolicy" },
                    "metadata": {"name": name, "namespace": ns, "resourceVersion": rv_s}, "spec": spec});
                let resource = if staged {
                    "stagednetworkpolicies"
                } else {
                    "networkpolicies"
                };
                (
                    verb(false).into(),
                    resource,
                    "projectcalico.org",
                    ns,
                    name,
                    object,
                )
            }
            6 => {
                let name = format!("gnp{}", rng.below(2));
                let object = json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
                    "metadata": {"name": name, "resourceVersion": rv_s},
                    "spec": {"selector": rng.pick(&["app == 'db'", "all()", "has(host)"]),
                             "namespaceSelector": rng.pick(&["", "env == 'prod'"]),
                             "order": rng.below(5),
                             "ingress": [{"action": "Allow", "source": {"selector": "app == 'api'"}}],
                             "egress": [{"action": "Allow", "destination": {"selector": "role == 'public'"}}]}});
                (
                    verb(false).into(),
                    "globalnetworkpolicies",
                    "projectcalico.org",
                    String::new(),
                    name,
                    object,
                )
            }
            7 => {
                let ns = rng.pick(&["a", "b"]).to_owned();
                let mut labels = json!({});
                if rng.below(2) == 0 {
                    labels["env"] = json!(rng.pick(&["prod", "dev"]));
                }
                let object = json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": ns, "resourceVersion": rv_s, "labels": labels}});
                let verb = if rng.below(6) == 0 {
                    "delete"
                } else {
                    "update"
                };
                (verb.into(), "namespaces", "", String::new(), ns, object)
            }
            8 => {
                let name = rng.pick(&["sa1", "sa2"]).to_owned();
                let object = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": ns, "resourceVersion": rv_s,
                                 "labels": {"role": rng.pick(&["x", "y"])}}});
                (verb(true).into(), "serviceaccounts", "", ns, name, object)
            }
            9 => {
                let name = format!("svc{}", rng.below(2));
                let addresses: Vec<Value> = (0..rng.below(3))
                    .map(|_| json!({"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": format!("p{}", rng.below(8))}}))
                    .collect();
                let object = json!({"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": name, "namespace": ns, "resourceVersion": rv_s},
                    "subsets": [{"addresses": addresses}]});
                (verb(true).into(), "endpoints", "", ns, name, object)
            }
            10 => {
                let name = format!("set{}", rng.below(2));
                let object = json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet",
                    "metadata": {"name": name, "resourceVersion": rv_s, "labels": {"role": "public"}},
                    "spec": {"nets": [rng.pick(&["1.2.3.0/24", "10.1.0.0/16"])]}});
                (
                    verb(true).into(),
                    "globalnetworksets",
                    "projectcalico.org",
                    String::new(),
                    name,
                    object,
                )
            }
            _ => {
                if rng.below(2) == 0 {
                    let object = json!({"apiVersion": "projectcalico.org/v3", "kind": "Tier",
                        "metadata": {"name": "sec", "resourceVersion": rv_s},
                        "spec": {"order": rng.below(3) * 1_000_000}});
                    (
                        verb(true).into(),
                        "tiers",
                        "projectcalico.org",
                        String::new(),
                        "sec".into(),
                        object,
                    )
                } else {
                    let name = format!("h{}", rng.below(2));
                    let object = json!({"apiVersion": "projectcalico.org/v3", "kind": "HostEndpoint",
                        "metadata": {"name": name, "resourceVersion": rv_s, "labels": {"host": "y", "app": rng.pick(&apps)}},
                        "spec": {"profiles": if rng.below(2) == 0 { json!([]) } else { json!(["p"]) }}});
                    (
                        verb(true).into(),
                        "hostendpoints",
                        "projectcalico.org",
                        String::new(),
                        name,
                        object,
                    )
                }
            }
        }
    }

    /// A random history from 09:00 to 12:00 (some writes sharing their
    /// instant) over an empty start.
    fn random_history(seed: u64) -> Vec<v1::AuditEvent> {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut events = Vec::new();
        let mut second = 9 * 3600;
        for rv in 1..=400u64 {
            if rng.below(3) != 0 {
                second += 1 + rng.below(40);
            }
            let at = format!(
                "2026-01-01T{:02}:{:02}:{:02}Z",
                second / 3600,
                second / 60 % 60,
                second % 60
            );
            let (verb, resource, group, ns, name, object) = random_write(&mut rng, rv);
            let code = if verb == "create" { 201 } else { 200 };
            events.push(event(&verb, resource, group, &ns, &name, &at, code, object));
        }
        events
    }

    #[test]
    fn incremental_reports_equal_full_recalculation_on_random_histories() {
        let scopes = [
            None,
            Some(v1::EndpointsSelection {
                namespaces: Some(v1::NamesAndLabelsMatch {
                    names: vec![],
                    selector: "env == 'prod'".into(),
                }),
                ..Default::default()
            }),
            Some(v1::EndpointsSelection {
                selector: "app != 'db'".into(),
                service_accounts: Some(v1::NamesAndLabelsMatch {
                    names: vec![],
                    selector: "role == 'x'".into(),
                }),
                ..Default::default()
            }),
        ];
        let mut compared = 0;
        for seed in 0..24 {
            let events = random_history(seed);
            for report_type in [v1::ReportType::Inventory, v1::ReportType::NetworkAccess] {
                for scope in &scopes {
                    let input = input(report_type, scope.as_ref(), &events, None);
                    let full = compute_with(&input, Method::Full).unwrap();
                    let incremental = compute_with(&input, Method::Incremental).unwrap();
                    assert_eq!(incremental.contents, full.contents, "seed {seed}");
                    assert_eq!(incremental.summary, full.summary, "seed {seed}");
                    assert_eq!(incremental.warnings, full.warnings, "seed {seed}");
                    let Some(
                        v1::report_contents::Kind::Inventory(c)
                        | v1::report_contents::Kind::NetworkAccess(c),
                    ) = &full.contents.kind
                    else {
                        panic!()
                    };
                    compared += c.endpoints.len();
                }
            }
        }
        assert!(compared > 500, "the histories have endpoints: {compared}");
    }

    #[test]
    fn the_tracker_answers_as_the_calculator_after_every_instant() {
        for seed in 0..24 {
            let events = random_history(seed);
            let records: Vec<Recorded<'_>> = events
                .iter()
                .map(|e| Recorded::parse("c", &e.raw).unwrap())
                .collect();
            let mut replayer = Replayer::new();
            replayer.track_changes();
            let mut tracker = Tracker::new(replayer.state());
            for (i, rec) in records.iter().enumerate() {
                replayer.apply(rec);
                if records.get(i + 1).is_some_and(|n| n.time() == rec.time()) {
                    continue;
                }
                let keys = replayer.take_changed();
                tracker.update(replayer.state(), &keys);
                assert_eq!(
                    tracker.calculation(),
                    calculate(replayer.state()),
                    "seed {seed}, after event {i}"
                );
            }
        }
    }
}

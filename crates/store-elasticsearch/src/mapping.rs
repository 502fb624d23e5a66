//! Index names, the index templates (mapping and settings), the ILM policy
//! and the document of an event. No I/O.
//!
//! Events go to **daily indices by event time**, one per type and day for
//! every cluster (`auditrail-kube-2026.11.25`, the cluster a field of each
//! document): a fleet of clusters costs no more shards than one (two types
//! × 91 days × 2 copies is 364 shards whatever the number of clusters,
//! where one series per cluster filled a 3-node cluster's default
//! `cluster.max_shards_per_node` at about 8 clusters). With the product's
//! names ([`Naming::Product`]) the series stays per cluster
//! (`tigera_secure_ee_audit_kube.<cluster>.auditrail-2026.11.25`) so that
//! per-cluster Kibana index patterns match, at that shard cost.
//!
//! An event's index follows from its own time, so a re-sent event always
//! meets its first copy in the same index and `create` with the event id as
//! `_id` answers 409: de-duplication is exact. Events without any
//! timestamp (their time is when they were indexed, different on a
//! re-send) go to one `…-undated` index per type, for the same reason.
//! Size- or age-based rollover behind a write alias would send a re-sent
//! event to a newer index and store it twice.
//!
//! Our templates and searches match only the names we write: the product's
//! own indices (`tigera_secure_ee_audit_kube.<cluster>.fluentd-…`) are
//! never given our mapping or lifecycle. Retention: an ILM policy deletes
//! an index a whole day after the retention has passed for its last event
//! (`index.lifecycle.parse_origination_date` reads the day from the name;
//! the undated indices have no lifecycle), or, with ILM off, the indexer
//! deletes whole days.

use auditrail_event::EventType;
use auditrail_store::IndexedEvent;
use jiff::Timestamp;
use serde_json::{Value as Json, json};

use crate::dsl::time_json;

/// How indices are named.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Naming {
    /// `auditrail-kube-<day>`, `auditrail-ee-<day>`: one index per type and
    /// day for every cluster.
    #[default]
    Auditrail,
    /// Per cluster, under the product's prefixes:
    /// `tigera_secure_ee_audit_kube.<cluster>.auditrail-<day>`, so that the
    /// product's Kibana index patterns (`tigera_secure_ee_audit_kube.*`)
    /// match, while its own indices (`….fluentd-…`) are never ours.
    Product,
}

/// The day part of the name of the index of events without a timestamp.
const UNDATED: &str = "undated";

/// The most bytes of an index name.
pub const MAX_INDEX_NAME_BYTES: usize = 255;

impl Naming {
    /// The part of an index name before the day (`-` or `.auditrail-`
    /// included).
    fn series(self, cluster: &str, event_type: EventType) -> String {
        match self {
            Self::Auditrail => format!("auditrail-{}-", event_type.as_str()),
            Self::Product => format!(
                "tigera_secure_ee_audit_{}.{}.auditrail-",
                event_type.as_str(),
                cluster.to_ascii_lowercase()
            ),
        }
    }

    /// The index an event goes to: its day's, or the undated index of its
    /// series when it carries no timestamp.
    pub fn index(self, event: &IndexedEvent) -> String {
        let series = self.series(&event.cluster, event.event_type);
        if event.undated {
            format!("{series}{UNDATED}")
        } else {
            format!("{series}{}", event.time.strftime("%Y.%m.%d"))
        }
    }

    /// The patterns of every index we write (every type, all clusters).
    pub fn all_patterns(self) -> Vec<String> {
        EventType::ALL
            .into_iter()
            .map(|t| match self {
                Self::Auditrail => format!("auditrail-{}-*", t.as_str()),
                Self::Product => format!("tigera_secure_ee_audit_{}.*.auditrail-*", t.as_str()),
            })
            .collect()
    }

    /// The patterns of the undated indices.
    pub fn undated_patterns(self) -> Vec<String> {
        EventType::ALL
            .into_iter()
            .map(|t| match self {
                Self::Auditrail => format!("auditrail-{}-{UNDATED}", t.as_str()),
                Self::Product => {
                    format!(
                        "tigera_secure_ee_audit_{}.*.auditrail-{UNDATED}",
                        t.as_str()
                    )
                }
            })
            .collect()
    }

    /// The day an index holds, from its name (`None` for undated and other
    /// names).
    pub fn day_of(index: &str) -> Option<jiff::civil::Date> {
        let (_, day) = index.rsplit_once('-')?;
        jiff::civil::Date::strptime("%Y.%m.%d", day).ok()
    }

    /// Whether `index` is one we write.
    pub fn owns(self, index: &str) -> bool {
        let Some((series, day)) = index.rsplit_once('-') else {
            return false;
        };
        let dated = day == UNDATED || jiff::civil::Date::strptime("%Y.%m.%d", day).is_ok();
        dated
            && EventType::ALL.into_iter().any(|t| match self {
                Self::Auditrail => series == format!("auditrail-{}", t.as_str()),
                Self::Product => series
                    .strip_prefix(&format!("tigera_secure_ee_audit_{}.", t.as_str()))
                    .and_then(|rest| rest.strip_suffix(".auditrail"))
                    .is_some_and(|cluster| !cluster.is_empty()),
            })
    }
}

/// Name of the index template of the dated indices (with the product's
/// names, [`template_names`] adds a suffix so the two layouts never
/// overwrite each other's).
pub const TEMPLATE: &str = "auditrail-audit";
/// Name of the ILM policy.
pub const ILM_POLICY: &str = "auditrail-audit-retention";

/// The name of the template of `naming`'s dated indices, and of its
/// undated ones.
pub fn template_names(naming: Naming) -> (String, String) {
    let dated = match naming {
        Naming::Auditrail => TEMPLATE.to_owned(),
        Naming::Product => format!("{TEMPLATE}-product-names"),
    };
    let undated = format!("{dated}-{UNDATED}");
    (dated, undated)
}

/// The latest time `date_nanos` holds: 2262-04-11T23:47:16.854775807Z.
pub fn date_nanos_max() -> Timestamp {
    Timestamp::from_nanosecond(i128::from(i64::MAX)).unwrap_or(Timestamp::MAX)
}

/// Whether Elasticsearch's `date_nanos` can hold `t` (1970-01-01 to
/// 2262-04-11): a document with a time outside is refused for good.
pub fn in_date_nanos_range(t: Timestamp) -> bool {
    (Timestamp::UNIX_EPOCH..=date_nanos_max()).contains(&t)
}

/// The longest keyword value indexed, in characters. Lucene refuses a term
/// over 32,766 bytes, and Elasticsearch then refuses the whole document:
/// one event with a huge `requestURI` or `userAgent` (any field comes from
/// a client) would be rejected for good. With `ignore_above` such a value
/// is kept (in `raw`) but not indexed: searches for that exact value do not
/// find it. 8,191 characters of up to 4 bytes stay under Lucene's limit.
pub const KEYWORD_IGNORE_ABOVE: u32 = 8191;

fn keyword() -> Json {
    json!({ "type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE })
}

/// The mapping: keyword fields, dates, the response code as a number, the
/// original event stored but not indexed. `dynamic: false` keeps anything
/// else out of the index.
pub fn mappings() -> Json {
    json!({
        "dynamic": false,
        "properties": {
            "id": keyword(),
            "cluster": keyword(),
            "type": keyword(),
            "apiVersion": keyword(),
            "level": keyword(),
            "stage": keyword(),
            "auditID": keyword(),
            "verb": keyword(),
            "user": { "properties": { "username": keyword(), "groups": keyword() } },
            "impersonatedUser": { "properties": { "username": keyword() } },
            "sourceIPs": keyword(),
            "userAgent": keyword(),
            "objectRef": { "properties": {
                "resource": keyword(),
                "namespace": keyword(),
                "name": keyword(),
                "apiGroup": keyword(),
                "apiVersion": keyword(),
                "subresource": keyword(),
            } },
            "name": keyword(),
            "kind": keyword(),
            "requestURI": keyword(),
            "responseStatus": { "properties": { "code": { "type": "integer" } } },
            "dryRun": { "type": "boolean" },
            "requestReceivedTimestamp": { "type": "date_nanos" },
            "stageTimestamp": { "type": "date_nanos" },
            "time": { "type": "date_nanos" },
            "raw": { "type": "text", "index": false },
            // How the event arrived: kept in `_source`, not searchable.
            "provenance": { "type": "object", "enabled": false },
        }
    })
}

/// How the dated indices are laid out and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Index names.
    pub naming: Naming,
    /// Primary shards per index.
    pub shards: u32,
    /// Replicas per index.
    pub replicas: u32,
    /// Days an event is kept, when ILM deletes the indices; `None` when
    /// the indexer deletes them (ILM off) or nothing is deleted
    /// (retention 0).
    pub ilm_retention_days: Option<u32>,
}

/// The index templates of `layout`: the dated indices' (with the ILM
/// policy when ILM keeps them), and the undated ones' (never a lifecycle:
/// their events are deleted by query). Both match only names we write, and
/// the undated template's higher priority wins for the undated names,
/// which the dated patterns also match.
pub fn templates(layout: Layout) -> [(String, Json); 2] {
    let (dated_name, undated_name) = template_names(layout.naming);
    let settings = json!({
        "number_of_shards": layout.shards.max(1),
        "number_of_replicas": layout.replicas,
        "refresh_interval": "1s",
    });
    let mut dated_settings = settings.clone();
    if layout.ilm_retention_days.is_some() {
        dated_settings["index.lifecycle.name"] = json!(ILM_POLICY);
        // The day is read from our own names only: this template matches
        // nothing else.
        dated_settings["index.lifecycle.parse_origination_date"] = json!(true);
    }
    let meta = json!({ "description": "auditrail audit events (see crates/store-elasticsearch)" });
    let dated = json!({
        "index_patterns": layout.naming.all_patterns(),
        "priority": 200,
        "template": { "settings": dated_settings, "mappings": mappings() },
        "_meta": meta,
    });
    let undated = json!({
        "index_patterns": layout.naming.undated_patterns(),
        "priority": 201,
        "template": { "settings": settings, "mappings": mappings() },
        "_meta": meta,
    });
    [(dated_name, dated), (undated_name, undated)]
}

/// The ILM policy: delete an index a whole day after `retention_days` have
/// passed for its last event. An index's age counts from 00:00 UTC of its
/// day (the origination date read from its name), and its last events are
/// from 23:59:59 that day, so `min_age` is the retention plus one day: no
/// event is deleted before it is `retention_days` old.
pub fn ilm_policy(retention_days: u32) -> Json {
    json!({ "policy": {
        "phases": {
            "hot": { "min_age": "0ms", "actions": {} },
            "delete": {
                "min_age": format!("{}d", u64::from(retention_days) + 1),
                "actions": { "delete": {} },
            },
        },
        "_meta": { "description": format!("auditrail: keep audit events {retention_days} days") },
    } })
}

/// The document of an event.
pub fn document(event: &IndexedEvent) -> Json {
    let opt_time = |t: Option<Timestamp>| t.map_or(Json::Null, time_json);
    json!({
        "id": event.id.to_hex(),
        "cluster": event.cluster,
        "type": event.event_type.as_str(),
        "apiVersion": event.api_version.as_str(),
        "level": event.level.as_str(),
        "stage": event.stage.map_or("", |s| s.as_str()),
        "auditID": event.audit_id,
        "verb": event.verb,
        "user": { "username": event.username, "groups": event.user_groups },
        "impersonatedUser": { "username": event.impersonated_user },
        "sourceIPs": event.source_ips,
        "userAgent": event.user_agent,
        "objectRef": {
            "resource": event.resource,
            "namespace": event.namespace,
            "name": event.object_name,
            "apiGroup": event.api_group,
            "apiVersion": event.object_api_version,
            "subresource": event.subresource,
        },
        "name": event.name,
        "kind": event.kind.to_lowercase(),
        "requestURI": event.request_uri,
        "responseStatus": { "code": event.response_code },
        "dryRun": event.dry_run,
        "requestReceivedTimestamp": opt_time(event.request_received),
        "stageTimestamp": opt_time(event.stage_timestamp),
        "time": time_json(event.time),
        "raw": String::from_utf8_lossy(&event.raw),
        "provenance": event.provenance.as_ref().map_or(Json::Null, |p| json!(p)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(cluster: &str, time: &str) -> IndexedEvent {
        let line = format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{{"username":"u"}},"stageTimestamp":"{time}"}}"#
        );
        IndexedEvent::from_raw(cluster, line.as_bytes(), EventType::Kube, Timestamp::now())
            .expect("event")
    }

    fn undated(cluster: &str) -> IndexedEvent {
        let line = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"u"}}"#;
        IndexedEvent::from_raw(cluster, line.as_bytes(), EventType::Kube, Timestamp::now())
            .expect("event")
    }

    /// A glob of Elasticsearch's index patterns (`*` any run).
    fn matches(pattern: &str, name: &str) -> bool {
        match pattern.split_once('*') {
            None => pattern == name,
            Some((head, tail)) => {
                let Some(rest) = name.strip_prefix(head) else {
                    return false;
                };
                (0..=rest.len()).any(|i| rest.is_char_boundary(i) && matches(tail, &rest[i..]))
            }
        }
    }

    #[test]
    fn index_names_depend_only_on_the_event() {
        let e = event("Prod-1", "2026-11-18T23:59:59.999Z");
        assert_eq!(Naming::Auditrail.index(&e), "auditrail-kube-2026.11.18");
        assert_eq!(
            Naming::Product.index(&e),
            "tigera_secure_ee_audit_kube.prod-1.auditrail-2026.11.18"
        );
        assert_eq!(
            Naming::day_of(&Naming::Auditrail.index(&e)),
            Some(jiff::civil::date(2026, 11, 18))
        );
        // An event without any timestamp goes to one index whatever day it
        // is (re-)sent on, so a re-send meets its first copy.
        let u = undated("prod-1");
        assert!(u.undated);
        assert_eq!(Naming::Auditrail.index(&u), "auditrail-kube-undated");
        assert_eq!(
            Naming::Product.index(&u),
            "tigera_secure_ee_audit_kube.prod-1.auditrail-undated"
        );
        assert_eq!(Naming::day_of("auditrail-kube-undated"), None);
    }

    /// The product's own index names (Calico Enterprise's fluentd writes
    /// them; ILM rollover adds the generation), which none of our patterns
    /// may match, next to ours, which all must.
    #[test]
    fn our_patterns_match_our_names_and_never_the_products() {
        let products = [
            "tigera_secure_ee_audit_kube.cluster.fluentd-20261204-000001",
            "tigera_secure_ee_audit_ee.cluster.fluentd-20261204-000001",
            "tigera_secure_ee_audit_kube.cluster",
            "tigera_secure_ee_audit_kube.prod.20261204",
            "tigera_secure_ee_audit_ee.tenant.cluster.fluentd-000003",
            "tigera_secure_ee_flows.cluster.fluentd-20261204-000001",
        ];
        for naming in [Naming::Auditrail, Naming::Product] {
            let layout = Layout {
                naming,
                shards: 1,
                replicas: 0,
                ilm_retention_days: Some(90),
            };
            let mut patterns = naming.all_patterns();
            patterns.extend(naming.undated_patterns());
            for (_, template) in templates(layout) {
                patterns.extend(
                    template["index_patterns"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p.as_str().map(str::to_owned)),
                );
            }
            for product in products {
                assert!(
                    !patterns.iter().any(|p| matches(p, product)),
                    "{naming:?}: a pattern of {patterns:?} matches the product's {product}"
                );
                assert!(!naming.owns(product), "{naming:?} claims {product}");
            }
            for e in [event("prod", "2026-11-18T10:00:00Z"), undated("prod")] {
                let ours = naming.index(&e);
                assert!(naming.owns(&ours), "{ours}");
                let [(_, dated), (_, undated)] = templates(layout);
                let applies = |t: &Json| {
                    t["index_patterns"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|p| p.as_str().is_some_and(|p| matches(p, &ours)))
                };
                assert!(applies(&dated), "{ours}");
                assert_eq!(applies(&undated), e.undated, "{ours}");
            }
        }
        assert!(!Naming::Auditrail.owns("auditrail-kube-2026.13.45"));
        assert!(!Naming::Product.owns("tigera_secure_ee_audit_kube..auditrail-2026.11.18"));
    }

    #[test]
    fn only_our_dated_indices_get_the_lifecycle_and_it_keeps_a_whole_day_more() {
        let layout = Layout {
            naming: Naming::Product,
            shards: 3,
            replicas: 1,
            ilm_retention_days: Some(90),
        };
        let [(dated_name, dated), (undated_name, undated)] = templates(layout);
        assert_eq!(dated_name, "auditrail-audit-product-names");
        assert_eq!(undated_name, "auditrail-audit-product-names-undated");
        let settings = &dated["template"]["settings"];
        assert_eq!(settings["index.lifecycle.name"], ILM_POLICY);
        assert_eq!(settings["index.lifecycle.parse_origination_date"], true);
        assert_eq!(settings["number_of_shards"], 3);
        assert!(
            undated["template"]["settings"]
                .get("index.lifecycle.name")
                .is_none()
        );
        assert!(undated["priority"].as_u64() > dated["priority"].as_u64());
        let [(_, without), _] = templates(Layout {
            ilm_retention_days: None,
            ..layout
        });
        assert!(
            without["template"]["settings"]
                .get("index.lifecycle.name")
                .is_none()
        );
        assert_eq!(
            ilm_policy(90)["policy"]["phases"]["delete"]["min_age"],
            "91d"
        );
    }

    #[test]
    fn date_nanos_holds_1970_to_2262() {
        assert!(in_date_nanos_range(Timestamp::UNIX_EPOCH));
        assert!(in_date_nanos_range(date_nanos_max()));
        assert_eq!(
            date_nanos_max().to_string(),
            "2262-04-11T23:47:16.854775807Z"
        );
        assert!(!in_date_nanos_range(
            Timestamp::UNIX_EPOCH - jiff::SignedDuration::from_nanos(1)
        ));
        assert!(!in_date_nanos_range(
            date_nanos_max() + jiff::SignedDuration::from_nanos(1)
        ));
    }

    #[test]
    fn the_template_keeps_the_original_out_of_the_index() {
        let [(_, with_ilm), _] = templates(Layout {
            naming: Naming::Auditrail,
            shards: 1,
            replicas: 0,
            ilm_retention_days: Some(91),
        });
        let props = &with_ilm["template"]["mappings"]["properties"];
        assert_eq!(props["raw"]["index"], false);
        assert_eq!(
            props["responseStatus"]["properties"]["code"]["type"],
            "integer"
        );
        assert_eq!(props["time"]["type"], "date_nanos");
        assert_eq!(props["verb"]["type"], "keyword");
        // Every keyword, the client-chosen ones above all, has a length
        // past which it is kept but not indexed, so no event is refused
        // for a value over Lucene's term limit.
        for field in [
            &props["requestURI"],
            &props["userAgent"],
            &props["auditID"],
            &props["user"]["properties"]["username"],
            &props["objectRef"]["properties"]["name"],
        ] {
            assert_eq!(field["ignore_above"], KEYWORD_IGNORE_ABOVE, "{field}");
        }
        assert_eq!(
            with_ilm["template"]["settings"]["index.lifecycle.name"],
            ILM_POLICY
        );
    }
}

//! Index names, the index template (mapping and settings), the ILM policy
//! and the document of an event. No I/O.
//!
//! Events go to **daily indices by event time**, one series per cluster and
//! type: `auditrail-kube.<cluster>-2026.11.25`, or with the product's names
//! `tigera_secure_ee_audit_kube.<cluster>.-2026.11.25` so that existing
//! Kibana index patterns (`tigera_secure_ee_audit_kube.*`) keep matching.
//! An event's index follows from its own time, so a re-sent event always
//! meets its first copy in the same index and `create` with the event id as
//! `_id` answers 409: de-duplication is exact. Size- or age-based rollover
//! behind a write alias would send a re-sent event to a newer index and
//! store it twice. Retention: an ILM policy deletes an index N days after
//! the day in its name (`index.lifecycle.parse_origination_date`), or, with
//! ILM off, `ElasticStore::delete_before` deletes whole days.

use auditrail_event::EventType;
use auditrail_store::IndexedEvent;
use jiff::Timestamp;
use serde_json::{Value as Json, json};

use crate::dsl::time_json;

/// How indices are named.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Naming {
    /// `auditrail-kube.<cluster>-<day>`, `auditrail-ee.<cluster>-<day>`.
    #[default]
    Auditrail,
    /// The product's: `tigera_secure_ee_audit_kube.<cluster>.-<day>` and
    /// `tigera_secure_ee_audit_ee.<cluster>.-<day>`.
    Product,
}

impl Naming {
    /// The prefix of every index of one type.
    fn type_prefix(self, event_type: EventType) -> String {
        match self {
            Self::Auditrail => format!("auditrail-{}.", event_type.as_str()),
            Self::Product => format!("tigera_secure_ee_audit_{}.", event_type.as_str()),
        }
    }

    /// The series (name without the day) of a cluster and type. Index
    /// names are lower case, so `Prod` and `prod` share a series (the
    /// `cluster` field still tells them apart).
    pub fn series(self, cluster: &str, event_type: EventType) -> String {
        let prefix = self.type_prefix(event_type);
        let cluster = cluster.to_ascii_lowercase();
        match self {
            Self::Auditrail => format!("{prefix}{cluster}"),
            Self::Product => format!("{prefix}{cluster}."),
        }
    }

    /// The index an event of `time` goes to.
    pub fn index(self, cluster: &str, event_type: EventType, time: Timestamp) -> String {
        format!(
            "{}-{}",
            self.series(cluster, event_type),
            time.strftime("%Y.%m.%d")
        )
    }

    /// The patterns of every audit index (both types, all clusters).
    pub fn all_patterns(self) -> Vec<String> {
        [EventType::Kube, EventType::Ee]
            .into_iter()
            .map(|t| format!("{}*", self.type_prefix(t)))
            .collect()
    }

    /// The day an index holds, from its name (`None` for other names).
    pub fn day_of(index: &str) -> Option<jiff::civil::Date> {
        let (_, day) = index.rsplit_once('-')?;
        jiff::civil::Date::strptime("%Y.%m.%d", day).ok()
    }

    /// Cluster (lower-cased, as in the name) and type of one of our
    /// indices, from its name.
    pub fn parse(self, index: &str) -> Option<(String, EventType)> {
        let (series, _) = index.rsplit_once('-')?;
        for event_type in [EventType::Kube, EventType::Ee] {
            let Some(rest) = series.strip_prefix(&self.type_prefix(event_type)) else {
                continue;
            };
            let cluster = match self {
                Self::Auditrail => rest,
                Self::Product => rest.strip_suffix('.')?,
            };
            return Some((cluster.to_owned(), event_type));
        }
        None
    }
}

/// Name of the index template.
pub const TEMPLATE: &str = "auditrail-audit";
/// Name of the ILM policy.
pub const ILM_POLICY: &str = "auditrail-audit-retention";

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
        }
    })
}

/// The index template for `naming`: mapping, shards and replicas, and the
/// ILM policy when retention is managed by ILM.
pub fn template(naming: Naming, replicas: u32, ilm: bool) -> Json {
    let mut settings = json!({
        "number_of_shards": 1,
        "number_of_replicas": replicas,
        "refresh_interval": "1s",
    });
    if ilm {
        settings["index.lifecycle.name"] = json!(ILM_POLICY);
        settings["index.lifecycle.parse_origination_date"] = json!(true);
    }
    json!({
        "index_patterns": naming.all_patterns(),
        "priority": 200,
        "template": { "settings": settings, "mappings": mappings() },
        "_meta": { "description": "auditrail audit events (see crates/store-elasticsearch)" },
    })
}

/// The ILM policy: delete an index `retention_days` after its day.
pub fn ilm_policy(retention_days: u32) -> Json {
    json!({ "policy": { "phases": {
        "hot": { "min_age": "0ms", "actions": {} },
        "delete": { "min_age": format!("{retention_days}d"), "actions": { "delete": {} } },
    } } })
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_follow_the_naming_and_parse_back() {
        let t = Timestamp::from_second(1_795_000_000).unwrap();
        let own = Naming::Auditrail.index("prod-1", EventType::Kube, t);
        assert_eq!(own, "auditrail-kube.prod-1-2026.11.18");
        let product = Naming::Product.index("prod-1", EventType::Ee, t);
        assert_eq!(product, "tigera_secure_ee_audit_ee.prod-1.-2026.11.18");
        assert_eq!(
            Naming::Auditrail.parse(&own),
            Some(("prod-1".to_owned(), EventType::Kube))
        );
        assert_eq!(
            Naming::Product.parse(&product),
            Some(("prod-1".to_owned(), EventType::Ee))
        );
        assert_eq!(Naming::day_of(&own), Some(jiff::civil::date(2026, 11, 18)));
        assert_eq!(Naming::Auditrail.parse("other-index"), None);
        assert_eq!(
            Naming::Auditrail.index("Prod", EventType::Kube, t),
            "auditrail-kube.prod-2026.11.18"
        );
        assert_eq!(
            Naming::Product.all_patterns(),
            vec![
                "tigera_secure_ee_audit_kube.*".to_owned(),
                "tigera_secure_ee_audit_ee.*".to_owned()
            ]
        );
    }

    #[test]
    fn the_template_keeps_the_original_out_of_the_index() {
        let with_ilm = template(Naming::Auditrail, 0, true);
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
        assert!(
            template(Naming::Auditrail, 0, false)["template"]["settings"]
                .get("index.lifecycle.name")
                .is_none()
        );
        assert_eq!(
            ilm_policy(91)["policy"]["phases"]["delete"]["min_age"],
            "91d"
        );
    }
}

//! What an audit event means, in the words the trail shows.
//!
//! An audit trail must never misstate what happened, and the raw fields
//! make that easy to get wrong: a `create` on `pods/exec` is an exec into a
//! running pod, not a new pod; an update of `deployments/scale` is a scaling,
//! not a new version of the Deployment; a `delete` of namespace `foo` carries
//! `objectRef.namespace = foo` although a namespace lives in none; a 403 or a
//! dry run changed nothing. This module decides, once for every client (CLI,
//! console, reports):
//!
//! - the object of an event ([`Event::object`]): kind from the resource
//!   table, namespace only where the resource is namespaced, derived name;
//! - whether the event is a *version* of that object ([`Event::is_version`]):
//!   a successful (2xx) create, update, patch or delete of the object itself
//!   (no subresource) at stage `ResponseComplete` that was not a dry run;
//! - one line that says what happened ([`Event::summary`]), e.g.
//!   `NetworkPolicy prod/db created`, `Pod default/web-1 exec`,
//!   `Deployment prod/web scaled`, `Secret kube-system/x create failed (403)`.

use std::borrow::Cow;
use std::fmt;

use crate::model::{Event, Stage};
use crate::resource;

/// Every verb an audit event can carry: the API server's resource verbs,
/// then the lower-cased HTTP methods it records for non-resource requests.
pub const KNOWN_VERBS: [&str; 15] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "proxy",
    "post",
    "put",
    "head",
    "options",
    "connect",
    "trace",
];

/// The verbs that change objects (a timeline shows these).
pub const CHANGE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// The verbs whose successful calls are versions of one object.
pub const VERSION_VERBS: [&str; 4] = ["create", "update", "patch", "delete"];

/// Subresources that open a session into a running pod. They are actions a
/// timeline shows whatever their verb (kubectl 1.30+ opens them with a
/// `get` over WebSockets, older clients with a `create`).
pub const SESSION_SUBRESOURCES: [&str; 3] = ["exec", "attach", "portforward"];

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object<'a> {
    /// The kind (from the resource table; the resource name when unknown).
    pub kind: Cow<'static, str>,
    /// The namespace, `None` for cluster-scoped resources whatever the
    /// event's `objectRef.namespace` says.
    pub namespace: Option<Cow<'a, str>>,
    /// The derived name; empty for collections (list, deletecollection).
    pub name: Cow<'a, str>,
    /// `objectRef.subresource`, empty when the event is about the object
    /// itself.
    pub subresource: Cow<'a, str>,
}

impl fmt::Display for Object<'_> {
    /// `Kind namespace/name`, `Kind name`, or `Kind in namespace` for a
    /// collection.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        match (&self.namespace, self.name.is_empty()) {
            (Some(ns), false) => write!(f, " {ns}/{}", self.name),
            (None, false) => write!(f, " {}", self.name),
            (Some(ns), true) => write!(f, " in {ns}"),
            (None, true) => Ok(()),
        }
    }
}

/// How a request ended, as far as the event tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// It succeeded (or, for a session, was switched to the stream).
    Done,
    /// It failed with this HTTP status.
    Failed(i32),
    /// The API server panicked while serving it.
    Panicked,
    /// The event was written before the outcome was known, or does not say.
    Unknown(&'static str),
}

fn past_tense(verb: &str) -> Option<&'static str> {
    Some(match verb {
        "create" => "created",
        "update" | "patch" => "updated",
        "delete" => "deleted",
        "deletecollection" => "deleted (collection)",
        _ => return None,
    })
}

/// `text`, or `blank` when it holds nothing to read: the trail never shows
/// an empty line for an event whose verb or URI is empty.
fn or_blank<'t>(text: &'t str, blank: &'t str) -> &'t str {
    if text.trim().is_empty() { blank } else { text }
}

fn is_write(verb: &str) -> bool {
    CHANGE_VERBS.contains(&verb)
}

/// The name of a connection into a pod or service (a session or the API
/// server's proxy), whatever its verb and outcome: these subresources say
/// what was attempted on their own.
fn connection_action(subresource: &str) -> Option<&'static str> {
    Some(match subresource {
        "exec" => "exec",
        "attach" => "attach",
        "portforward" => "port-forward",
        "proxy" => "proxy",
        _ => return None,
    })
}

/// What was done to a subresource, when it succeeded; `None`: say
/// `<subresource> <verb>`.
fn subresource_action(subresource: &str, verb: &str) -> Option<&'static str> {
    if let Some(session) = connection_action(subresource) {
        return Some(session);
    }
    let write = matches!(verb, "update" | "patch");
    Some(match subresource {
        "scale" if write => "scaled",
        "status" if write => "status updated",
        "eviction" if verb == "create" => "evicted",
        "binding" if verb == "create" => "bound to a node",
        "ephemeralcontainers" if write => "ephemeral containers updated",
        "resize" if write => "resized",
        "token" if verb == "create" => "token requested",
        "finalize" if write => "finalized",
        "approval" if write => "approval updated",
        "log" if verb == "get" => "log read",
        _ => return None,
    })
}

impl<'a> Event<'a> {
    /// The object the event is about; `None` for non-resource requests
    /// (`/healthz`, `/version`, …).
    pub fn object(&self) -> Option<Object<'a>> {
        let r = self.object_ref.as_ref()?;
        let resource = r.resource.as_deref().filter(|s| !s.is_empty())?;
        let group = r.api_group.as_deref().unwrap_or("");
        let namespace = if resource::is_cluster_scoped(resource, group) {
            None
        } else {
            r.namespace.clone().filter(|ns| !ns.is_empty())
        };
        Some(Object {
            kind: resource::kind_of(resource, group),
            namespace,
            name: self.derived_name().unwrap_or_default(),
            subresource: r.subresource.clone().unwrap_or_default(),
        })
    }

    /// `objectRef.subresource`, empty when none.
    pub fn subresource(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|r| r.subresource.as_deref())
            .unwrap_or("")
    }

    /// Whether the event records a new version of its object: a successful
    /// (2xx) create, update, patch or delete of the object itself (no
    /// subresource) at stage `ResponseComplete`, not a dry run, with a name.
    /// Exactly these events are the object's history.
    pub fn is_version(&self) -> bool {
        VERSION_VERBS.contains(&self.verb.as_ref())
            && self.subresource().is_empty()
            && self.stage == Some(Stage::ResponseComplete)
            && self
                .response_code()
                .is_some_and(|c| (200..300).contains(&c))
            && !self.is_dry_run()
            && self.derived_name().is_some()
    }

    fn outcome(&self) -> Outcome {
        match (self.stage, self.response_code()) {
            (Some(Stage::Panic), _) => Outcome::Panicked,
            (_, Some(code)) if code >= 400 => Outcome::Failed(code),
            (Some(Stage::RequestReceived), _) => Outcome::Unknown("request received"),
            (None, _) => Outcome::Unknown("no stage"),
            (_, None) => Outcome::Unknown("no response code"),
            (Some(Stage::ResponseStarted), Some(_))
                if is_write(&self.verb) && !SESSION_SUBRESOURCES.contains(&self.subresource()) =>
            {
                Outcome::Unknown("response started")
            }
            (Some(_), Some(code)) if is_write(&self.verb) && !(100..300).contains(&code) => {
                Outcome::Unknown("no 2xx response")
            }
            (Some(_), Some(_)) => Outcome::Done,
        }
    }

    /// What was done, as the timeline says it: `created`, `updated`,
    /// `deleted`, `exec`, `scaled`, `get`, `create failed (403)`,
    /// `create (dry run)`, …
    pub fn action(&self) -> String {
        let verb = self.verb.as_ref();
        let subresource = self.subresource();
        // What was attempted, in words that stay true whatever the outcome.
        let attempt = if subresource.is_empty() {
            or_blank(verb, "(no verb)").to_owned()
        } else if let Some(connection) = connection_action(subresource) {
            connection.to_owned()
        } else {
            format!("{subresource} {}", or_blank(verb, "(no verb)"))
        };
        match self.outcome() {
            Outcome::Panicked => format!("{attempt} failed (the API server panicked)"),
            Outcome::Failed(code) => format!("{attempt} failed ({code})"),
            Outcome::Unknown(why) => format!("{attempt} ({why})"),
            Outcome::Done if self.is_dry_run() && is_write(verb) => {
                format!("{attempt} (dry run)")
            }
            Outcome::Done => {
                let done = if subresource.is_empty() {
                    past_tense(verb)
                } else {
                    subresource_action(subresource, verb)
                };
                done.map_or(attempt, str::to_owned)
            }
        }
    }

    /// One line saying what happened: `<object> <action>`, e.g.
    /// `Namespace foo deleted`, `Pod default/nginx exec`; for a
    /// non-resource request `<verb> <requestURI>`. Never blank: an empty
    /// verb or URI is shown as `(no verb)`, `(no request URI)`.
    pub fn summary(&self) -> String {
        match self.object() {
            Some(object) => format!("{object} {}", self.action()),
            None => format!(
                "{} {}",
                or_blank(&self.verb, "(no verb)"),
                or_blank(&self.request_uri, "(no request URI)")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::parse_line;

    fn summary(line: &str) -> (String, bool) {
        let parsed = parse_line(line.as_bytes()).expect("event");
        (parsed.event.summary(), parsed.event.is_version())
    }

    fn event(verb: &str, object_ref: &str, stage: &str, code: u16, extra: &str) -> String {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"{stage}","requestURI":"/x{extra}","verb":"{verb}","user":{{"username":"u"}},"objectRef":{object_ref},"responseStatus":{{"code":{code}}},"stageTimestamp":"2026-01-01T00:00:00Z"}}"#
        )
    }

    #[test]
    fn changes_of_the_object_itself_are_versions() {
        let pod = r#"{"resource":"pods","namespace":"default","name":"web"}"#;
        assert_eq!(
            summary(&event("create", pod, "ResponseComplete", 201, "")),
            ("Pod default/web created".to_owned(), true)
        );
        assert_eq!(
            summary(&event("patch", pod, "ResponseComplete", 200, "")),
            ("Pod default/web updated".to_owned(), true)
        );
        assert_eq!(
            summary(&event("delete", pod, "ResponseComplete", 200, "")),
            ("Pod default/web deleted".to_owned(), true)
        );
    }

    #[test]
    fn subresources_are_actions_on_the_object() {
        let sub = |s: &str| {
            format!(
                r#"{{"resource":"pods","namespace":"default","name":"web","subresource":"{s}"}}"#
            )
        };
        assert_eq!(
            summary(&event("create", &sub("exec"), "ResponseStarted", 101, "")),
            ("Pod default/web exec".to_owned(), false)
        );
        assert_eq!(
            summary(&event("get", &sub("exec"), "ResponseComplete", 101, "")),
            ("Pod default/web exec".to_owned(), false)
        );
        assert_eq!(
            summary(&event(
                "create",
                &sub("attach"),
                "ResponseComplete",
                403,
                ""
            )),
            ("Pod default/web attach failed (403)".to_owned(), false)
        );
        assert_eq!(
            summary(&event(
                "update",
                &sub("status"),
                "ResponseComplete",
                200,
                ""
            )),
            ("Pod default/web status updated".to_owned(), false)
        );
        assert_eq!(
            summary(&event(
                "create",
                &sub("eviction"),
                "ResponseComplete",
                201,
                ""
            )),
            ("Pod default/web evicted".to_owned(), false)
        );
        assert_eq!(
            summary(&event("get", &sub("log"), "ResponseComplete", 200, "")),
            ("Pod default/web log read".to_owned(), false)
        );
        assert_eq!(
            summary(&event("get", &sub("status"), "ResponseComplete", 200, "")),
            ("Pod default/web status get".to_owned(), false)
        );
        let scale = r#"{"resource":"deployments","apiGroup":"apps","namespace":"prod","name":"web","subresource":"scale"}"#;
        assert_eq!(
            summary(&event("patch", scale, "ResponseComplete", 200, "")),
            ("Deployment prod/web scaled".to_owned(), false)
        );
    }

    #[test]
    fn scope_comes_from_the_resource() {
        let ns = r#"{"resource":"namespaces","namespace":"foo","name":"foo"}"#;
        assert_eq!(
            summary(&event("delete", ns, "ResponseComplete", 200, "")),
            ("Namespace foo deleted".to_owned(), true)
        );
        let lease = r#"{"resource":"leases","apiGroup":"coordination.k8s.io","namespace":"kube-system","name":"x"}"#;
        assert_eq!(
            summary(&event("get", lease, "ResponseComplete", 200, "")),
            ("Lease kube-system/x get".to_owned(), false)
        );
    }

    #[test]
    fn failures_dry_runs_and_early_stages_are_not_changes() {
        let cm = r#"{"resource":"configmaps","namespace":"a","name":"b"}"#;
        assert_eq!(
            summary(&event("create", cm, "ResponseComplete", 409, "")),
            ("ConfigMap a/b create failed (409)".to_owned(), false)
        );
        assert_eq!(
            summary(&event("create", cm, "ResponseComplete", 201, "?dryRun=All")),
            ("ConfigMap a/b create (dry run)".to_owned(), false)
        );
        assert_eq!(
            summary(&event("update", cm, "RequestReceived", 0, "")),
            ("ConfigMap a/b update (request received)".to_owned(), false)
        );
        assert_eq!(
            summary(&event("delete", cm, "Panic", 500, "")),
            (
                "ConfigMap a/b delete failed (the API server panicked)".to_owned(),
                false
            )
        );
        let all = r#"{"resource":"configmaps","namespace":"a"}"#;
        assert_eq!(
            summary(&event("deletecollection", all, "ResponseComplete", 200, "")),
            ("ConfigMap in a deleted (collection)".to_owned(), false)
        );
        assert_eq!(
            summary(&event("list", all, "ResponseComplete", 200, "")),
            ("ConfigMap in a list".to_owned(), false)
        );
    }

    #[test]
    fn unknown_resources_and_non_resource_requests() {
        let route =
            r#"{"resource":"routes","apiGroup":"route.openshift.io","namespace":"a","name":"r"}"#;
        assert_eq!(
            summary(&event("create", route, "ResponseComplete", 201, "")),
            ("routes a/r created".to_owned(), true)
        );
        let line = r#"{"kind":"Event","level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/healthz","verb":"get","user":{"username":"u"},"responseStatus":{"code":200}}"#;
        assert_eq!(summary(line), ("get /healthz".to_owned(), false));
    }
}

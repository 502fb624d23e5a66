//! The request attributes behind a recorded audit event.
//!
//! auditrail often has to ask "which rule of *this* policy would have
//! recorded *that* event, and at which level?": to explain an event, to
//! preview what a policy change would stop recording, or to check a policy
//! against a day of real traffic. That needs the attributes kube-apiserver
//! matched its policy against, rebuilt from the event it wrote.
//!
//! The event carries almost all of them: the authenticated user (`user`, not
//! `impersonatedUser`: the policy is evaluated before impersonation is
//! applied), the verb, and `objectRef` for resource requests. The rebuild is
//! an approximation in a few documented ways, because the API server
//! evaluates the policy when the request arrives, before the object exists,
//! and completes `objectRef` later from the request body:
//!
//! - A `create` of a resource (no subresource) has no name when the policy is
//!   evaluated: the name is in the body, not in the URL. The API server copies
//!   it into `objectRef.name` afterwards, so it is dropped here, and
//!   `resourceNames` rules do not match such creates, as upstream. A `create`
//!   with `generateName` shows no name in `objectRef` either. Creates of a
//!   subresource (`pods/exec`, `pods/eviction`) name the parent object in the
//!   URL and keep their name.
//! - A request without `objectRef` is read as a non-resource request whose
//!   path is `requestURI` up to the query string. Percent-escapes are kept as
//!   written (the API server matches the decoded path; the two only differ
//!   for escaped characters, which non-resource paths do not use in practice).
//! - An event without any user (hand-trimmed samples) gives a request with no
//!   user, which no `users` or `userGroups` rule matches.

use auditrail_event::Event;

use crate::matcher::{RequestAttributes, RequestTarget, ResourceAttributes, UserInfo};

impl RequestAttributes {
    /// The attributes kube-apiserver evaluated its audit policy against for
    /// the request recorded by `event` (see the module docs for the
    /// approximations).
    ///
    /// ```
    /// use auditrail_policy::{RequestAttributes, RequestTarget};
    ///
    /// let line = br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods/web/log?follow=true","verb":"get","user":{"username":"alice","groups":["dev"]},"objectRef":{"resource":"pods","namespace":"default","name":"web","apiVersion":"v1","subresource":"log"}}"#;
    /// let parsed = auditrail_event::parse_line(line)?;
    /// let attrs = RequestAttributes::from_event(&parsed.event);
    /// assert_eq!(attrs.verb, "get");
    /// let RequestTarget::Resource(r) = &attrs.target else { unreachable!() };
    /// assert_eq!((r.api_group.as_str(), r.resource.as_str(), r.subresource.as_str()), ("", "pods", "log"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_event(event: &Event<'_>) -> Self {
        let user = &event.user;
        let user = (!user.username.is_empty() || !user.groups.is_empty()).then(|| UserInfo {
            name: user.username.clone().into_owned(),
            groups: user.groups.iter().map(|g| g.clone().into_owned()).collect(),
        });
        let target = match &event.object_ref {
            Some(object) => {
                let text = |field: &Option<std::borrow::Cow<'_, str>>| {
                    field.as_deref().unwrap_or_default().to_owned()
                };
                let subresource = text(&object.subresource);
                // A create of the resource itself names its object in the
                // body only; see the module docs.
                let name = if event.verb == "create" && subresource.is_empty() {
                    String::new()
                } else {
                    text(&object.name)
                };
                RequestTarget::Resource(ResourceAttributes {
                    namespace: text(&object.namespace),
                    api_group: text(&object.api_group),
                    resource: text(&object.resource),
                    subresource,
                    name,
                })
            }
            None => RequestTarget::NonResource {
                path: path_of(&event.request_uri).to_owned(),
            },
        };
        Self {
            user,
            verb: event.verb.clone().into_owned(),
            target,
        }
    }
}

/// The path of a request URI: everything before the query string.
fn path_of(request_uri: &str) -> &str {
    request_uri
        .split_once('?')
        .map_or(request_uri, |(path, _)| path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(line: &str) -> RequestAttributes {
        let parsed = auditrail_event::parse_line(line.as_bytes()).expect("test event parses");
        RequestAttributes::from_event(&parsed.event)
    }

    fn event(verb: &str, uri: &str, rest: &str) -> String {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"x","stage":"ResponseComplete","requestURI":"{uri}","verb":"{verb}"{rest}}}"#
        )
    }

    fn resource(a: &RequestAttributes) -> &ResourceAttributes {
        match &a.target {
            RequestTarget::Resource(r) => r,
            RequestTarget::NonResource { path } => panic!("non-resource {path}"),
        }
    }

    #[test]
    fn resource_request_takes_every_object_ref_field() {
        let a = attrs(&event(
            "patch",
            "/apis/projectcalico.org/v3/namespaces/prod/networkpolicies/default.allow/status",
            r#","user":{"username":"bob","groups":["ops","system:authenticated"]},"objectRef":{"resource":"networkpolicies","namespace":"prod","name":"default.allow","apiGroup":"projectcalico.org","apiVersion":"v3","subresource":"status"}"#,
        ));
        assert_eq!(
            a,
            RequestAttributes::resource(
                "patch",
                ResourceAttributes::new("projectcalico.org", "networkpolicies")
                    .in_namespace("prod")
                    .with_subresource("status")
                    .with_name("default.allow"),
            )
            .with_user("bob", ["ops", "system:authenticated"])
        );
    }

    #[test]
    fn absent_namespace_and_group_are_empty() {
        let a = attrs(&event(
            "delete",
            "/api/v1/nodes/n1",
            r#","user":{"username":"admin"},"objectRef":{"resource":"nodes","name":"n1","apiVersion":"v1"}"#,
        ));
        let r = resource(&a);
        assert_eq!((r.namespace.as_str(), r.api_group.as_str()), ("", ""));
        assert_eq!((r.resource.as_str(), r.name.as_str()), ("nodes", "n1"));
        assert_eq!(
            a.user,
            Some(UserInfo {
                name: "admin".to_owned(),
                groups: Vec::new()
            })
        );
    }

    #[test]
    fn create_of_a_resource_has_no_name_but_of_a_subresource_has() {
        // objectRef.name was filled in from the body after the policy was evaluated.
        let a = attrs(&event(
            "create",
            "/api/v1/namespaces/kube-system/configmaps",
            r#","objectRef":{"resource":"configmaps","namespace":"kube-system","name":"controller-leader","apiVersion":"v1"}"#,
        ));
        assert_eq!(resource(&a).name, "");
        let a = attrs(&event(
            "create",
            "/api/v1/namespaces/default/pods/web/exec?command=sh",
            r#","objectRef":{"resource":"pods","namespace":"default","name":"web","apiVersion":"v1","subresource":"exec"}"#,
        ));
        assert_eq!(resource(&a).name, "web");
    }

    #[test]
    fn no_object_ref_is_a_non_resource_request_without_query() {
        let a = attrs(&event(
            "get",
            "/healthz/etcd?verbose=1&x=?",
            r#","user":{"username":"system:anonymous","groups":["system:unauthenticated"]}"#,
        ));
        assert_eq!(
            a,
            RequestAttributes::non_resource("get", "/healthz/etcd")
                .with_user("system:anonymous", ["system:unauthenticated"])
        );
        assert_eq!(
            attrs(&event("get", "/version", "")).target,
            RequestTarget::NonResource {
                path: "/version".to_owned()
            }
        );
    }

    #[test]
    fn missing_user_is_no_user() {
        assert_eq!(attrs(&event("get", "/version", "")).user, None);
        let a = attrs(&event(
            "get",
            "/version",
            r#","user":{"groups":["system:authenticated"]}"#,
        ));
        assert_eq!(
            a.user.map(|u| u.groups),
            Some(vec!["system:authenticated".to_owned()])
        );
    }

    #[test]
    fn impersonated_user_is_not_the_policy_user() {
        let a = attrs(&event(
            "get",
            "/api/v1/namespaces/default/secrets/s",
            r#","user":{"username":"admin","groups":["system:masters"]},"impersonatedUser":{"username":"eve","groups":["dev"]},"objectRef":{"resource":"secrets","namespace":"default","name":"s","apiVersion":"v1"}"#,
        ));
        assert_eq!(a.user.map(|u| u.name), Some("admin".to_owned()));
    }
}

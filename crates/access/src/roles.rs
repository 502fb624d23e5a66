//! Roles, their bindings to users and groups, and the decision: may this
//! identity use this permission, and over which clusters and event types.
//!
//! Built-in roles, bound to the groups of the same name (a token file's
//! `groups = ["viewer"]` is enough):
//!
//! | role | permissions |
//! |---|---|
//! | `viewer` | read, status, policy, read_reports |
//! | `exporter` | the viewer's and export |
//! | `ingestor` | ingest |
//! | `recorder` | record_access (the auditrail processes that send access records to the indexer) |
//! | `admin` | every permission (the only built-in role with read_access) |
//!
//! A roles file adds roles and bindings (it cannot change the built-in
//! ones):
//!
//! ```toml
//! [[role]]
//! name = "team-a-reader"
//! permissions = ["read", "export"]
//! clusters = ["prod-a"]     # absent: every cluster
//! types = ["kube"]          # absent: both types (kube, ee)
//!
//! [[binding]]
//! role = "team-a-reader"
//! users = ["alice"]
//! groups = ["team-a"]
//! ```

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::{AccessError, Identity, Permission, Via};

/// The clusters and event types a permission reaches; `None` is all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Cluster names.
    pub clusters: Option<BTreeSet<String>>,
    /// Event types (`kube`, `ee`).
    pub types: Option<BTreeSet<String>>,
}

impl Scope {
    /// Everything.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether it reaches every cluster and type.
    pub fn is_all(&self) -> bool {
        self.clusters.is_none() && self.types.is_none()
    }

    /// Whether it reaches `cluster`.
    pub fn allows_cluster(&self, cluster: &str) -> bool {
        self.clusters.as_ref().is_none_or(|c| c.contains(cluster))
    }

    /// Whether it reaches events of `event_type`.
    pub fn allows_type(&self, event_type: &str) -> bool {
        self.types.as_ref().is_none_or(|t| t.contains(event_type))
    }

    /// What either scope reaches.
    fn union(self, other: Self) -> Self {
        fn join(
            a: Option<BTreeSet<String>>,
            b: Option<BTreeSet<String>>,
        ) -> Option<BTreeSet<String>> {
            Some(a?.union(&b?).cloned().collect())
        }
        Self {
            clusters: join(self.clusters, other.clusters),
            types: join(self.types, other.types),
        }
    }
}

/// The answer to "may this identity use this permission".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Yes, over this scope.
    Allow(Scope),
    /// No: none of its roles holds the permission.
    Deny,
}

#[derive(Debug, Clone)]
struct Role {
    name: String,
    permissions: BTreeSet<Permission>,
    scope: Scope,
}

#[derive(Debug, Clone)]
struct Binding {
    role: String,
    users: Vec<String>,
    groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    role: Vec<RoleEntry>,
    #[serde(default)]
    binding: Vec<BindingEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleEntry {
    name: String,
    permissions: Vec<String>,
    clusters: Option<Vec<String>>,
    types: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingEntry {
    role: String,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
}

/// The roles and bindings a server decides with.
#[derive(Debug, Clone)]
pub struct Roles {
    roles: Vec<Role>,
    bindings: Vec<Binding>,
}

impl Default for Roles {
    fn default() -> Self {
        Self::builtin()
    }
}

/// The built-in roles' names and permissions.
fn builtin_roles() -> Vec<Role> {
    use Permission::{Export, Policy, Read, ReadReports, Status};
    let role = |name: &str, permissions: &[Permission]| Role {
        name: name.to_owned(),
        permissions: permissions.iter().copied().collect(),
        scope: Scope::all(),
    };
    vec![
        role("viewer", &[Read, Status, Policy, ReadReports]),
        role("exporter", &[Read, Status, Policy, ReadReports, Export]),
        role("ingestor", &[Permission::Ingest]),
        role("recorder", &[Permission::RecordAccess]),
        role("admin", &Permission::ALL),
    ]
}

impl Roles {
    /// The built-in roles, each bound to the group of its name.
    pub fn builtin() -> Self {
        let roles = builtin_roles();
        let bindings = roles
            .iter()
            .map(|r| Binding {
                role: r.name.clone(),
                users: Vec::new(),
                groups: vec![r.name.clone()],
            })
            .collect();
        Self { roles, bindings }
    }

    /// The built-in roles plus those of a roles file's text; `what` names
    /// it in errors.
    pub fn parse(what: &str, text: &str) -> Result<Self, AccessError> {
        let invalid = |reason: String| AccessError::Invalid {
            what: what.to_owned(),
            reason,
        };
        let file: File = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut roles = Self::builtin();
        for entry in file.role {
            if roles.roles.iter().any(|r| r.name == entry.name) {
                return Err(invalid(format!(
                    "role {:?} is defined twice (viewer, exporter, ingestor, recorder and \
                     admin are built in)",
                    entry.name
                )));
            }
            let permissions = entry
                .permissions
                .iter()
                .map(|p| {
                    Permission::parse(p).ok_or_else(|| {
                        invalid(format!(
                            "role {:?}: unknown permission {p:?}; known: {}",
                            entry.name,
                            Permission::ALL.map(Permission::as_str).join(", ")
                        ))
                    })
                })
                .collect::<Result<BTreeSet<_>, _>>()?;
            if let Some(bad) = entry
                .types
                .iter()
                .flatten()
                .find(|t| !matches!(t.as_str(), "kube" | "ee"))
            {
                return Err(invalid(format!(
                    "role {:?}: unknown event type {bad:?}; known: kube, ee",
                    entry.name
                )));
            }
            roles.roles.push(Role {
                name: entry.name,
                permissions,
                scope: Scope {
                    clusters: entry.clusters.map(|c| c.into_iter().collect()),
                    types: entry.types.map(|t| t.into_iter().collect()),
                },
            });
        }
        for entry in file.binding {
            if !roles.roles.iter().any(|r| r.name == entry.role) {
                return Err(invalid(format!(
                    "a binding names role {:?}, which is not defined",
                    entry.role
                )));
            }
            roles.bindings.push(Binding {
                role: entry.role,
                users: entry.users,
                groups: entry.groups,
            });
        }
        Ok(roles)
    }

    /// Whether `identity` may use `permission`, and over which scope: the
    /// union of the scopes of its roles that hold it.
    pub fn decide(&self, identity: &Identity, permission: Permission) -> Decision {
        if identity.via == Via::Unchecked {
            return Decision::Allow(Scope::all());
        }
        let mut scope: Option<Scope> = None;
        for binding in &self.bindings {
            let bound = binding.users.contains(&identity.name)
                || binding.groups.iter().any(|g| identity.groups.contains(g));
            if !bound {
                continue;
            }
            for role in self.roles.iter().filter(|r| r.name == binding.role) {
                if role.permissions.contains(&permission) {
                    let role_scope = role.scope.clone();
                    scope = Some(match scope {
                        Some(s) => s.union(role_scope),
                        None => role_scope,
                    });
                }
            }
        }
        scope.map_or(Decision::Deny, Decision::Allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(name: &str, groups: &[&str]) -> Identity {
        Identity {
            name: name.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            via: Via::Token,
        }
    }

    #[test]
    fn builtin_roles_follow_their_groups() {
        let roles = Roles::builtin();
        let viewer = who("v", &["viewer"]);
        assert_eq!(
            roles.decide(&viewer, Permission::Read),
            Decision::Allow(Scope::all())
        );
        assert_eq!(roles.decide(&viewer, Permission::Export), Decision::Deny);
        assert_eq!(roles.decide(&viewer, Permission::Ingest), Decision::Deny);
        let exporter = who("e", &["exporter"]);
        assert!(matches!(
            roles.decide(&exporter, Permission::Export),
            Decision::Allow(_)
        ));
        let ingestor = who("i", &["ingestor"]);
        assert!(matches!(
            roles.decide(&ingestor, Permission::Ingest),
            Decision::Allow(_)
        ));
        assert_eq!(roles.decide(&ingestor, Permission::Read), Decision::Deny);
        let admin = who("a", &["admin"]);
        for p in Permission::ALL {
            assert!(matches!(roles.decide(&admin, p), Decision::Allow(_)), "{p}");
        }
        assert_eq!(
            roles.decide(&who("nobody", &[]), Permission::Read),
            Decision::Deny
        );
        let unchecked = Identity {
            via: Via::Unchecked,
            ..who("anyone", &[])
        };
        assert!(matches!(
            roles.decide(&unchecked, Permission::Delete),
            Decision::Allow(_)
        ));
    }

    #[test]
    fn a_roles_file_scopes_permissions_to_clusters_and_types() {
        let roles = Roles::parse(
            "roles.toml",
            r#"
            [[role]]
            name = "a-kube"
            permissions = ["read"]
            clusters = ["a"]
            types = ["kube"]

            [[role]]
            name = "b-all"
            permissions = ["read", "export"]
            clusters = ["b"]

            [[binding]]
            role = "a-kube"
            users = ["alice"]

            [[binding]]
            role = "b-all"
            groups = ["team-b"]
            "#,
        )
        .expect("valid");
        let alice = who("alice", &[]);
        let Decision::Allow(scope) = roles.decide(&alice, Permission::Read) else {
            panic!("alice reads");
        };
        assert!(scope.allows_cluster("a") && !scope.allows_cluster("b"));
        assert!(scope.allows_type("kube") && !scope.allows_type("ee"));
        assert_eq!(roles.decide(&alice, Permission::Export), Decision::Deny);
        // Both bindings: the scopes add up.
        let both = who("alice", &["team-b"]);
        let Decision::Allow(scope) = roles.decide(&both, Permission::Read) else {
            panic!("reads");
        };
        assert!(scope.allows_cluster("a") && scope.allows_cluster("b"));
        assert!(scope.allows_type("ee"), "b-all reaches every type");
        let Decision::Allow(export) = roles.decide(&both, Permission::Export) else {
            panic!("exports b");
        };
        assert!(export.allows_cluster("b") && !export.allows_cluster("a"));
        // A built-in group still works beside the file.
        assert!(matches!(
            roles.decide(&who("x", &["viewer"]), Permission::Read),
            Decision::Allow(s) if s.is_all()
        ));
    }

    #[test]
    fn bad_roles_files_say_what_is_wrong() {
        let cases = [
            (
                "[[role]]\nname = \"r\"\npermissions = [\"raed\"]\n",
                "unknown permission \"raed\"",
            ),
            (
                "[[role]]\nname = \"viewer\"\npermissions = []\n",
                "defined twice",
            ),
            (
                "[[role]]\nname = \"r\"\npermissions = []\ntypes = [\"calico\"]\n",
                "unknown event type",
            ),
            ("[[binding]]\nrole = \"ghost\"\n", "not defined"),
            ("[[role]]\nname = \"r\"\npermission = []\n", "unknown field"),
        ];
        for (text, expected) in cases {
            let err = Roles::parse("roles.toml", text).expect_err(text);
            assert!(err.to_string().contains(expected), "{text}: {err}");
            assert!(err.to_string().starts_with("roles.toml"), "{err}");
        }
    }
}

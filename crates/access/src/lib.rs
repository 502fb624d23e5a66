//! Who may call what, decided in one place for every service.
//!
//! An audit trail is evidence: reading it, exporting it, adding to it and
//! deleting from it are different powers, held by different people. This
//! crate holds the decisions, with no I/O, so that they are tested as plain
//! functions and the server's layer only gathers the inputs:
//!
//! - [`Identity`]: who is calling, from a client certificate or a bearer
//!   token ([`TokenFile`]: names, SHA-256 digests of tokens, groups; a
//!   token is never kept in clear).
//! - [`Permission`]: what an RPC needs ([`required`], one table of every
//!   RPC of `auditrail.v1`, checked against the contract by a test), and
//!   whether a call leaves an access record ([`recorded`]).
//! - [`Roles`]: the built-in roles (`viewer`, `exporter`, `ingestor`,
//!   `admin`, bound to the groups of the same names) and those of a roles
//!   file, each with a [`Scope`] of clusters and event types; [`Roles::decide`]
//!   answers with the scope the caller may use the permission in, or what
//!   is missing.

mod methods;
mod roles;
mod tokens;

pub use methods::{Required, recorded, required, service_recorded};
pub use roles::{Decision, Roles, Scope};
pub use tokens::{TokenFile, digest_hex};

/// Why an access file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The file is not valid TOML of the expected shape.
    #[error("{what}: {reason}")]
    Invalid {
        /// Which file.
        what: String,
        /// What is wrong, with its place in the file.
        reason: String,
    },
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name (a token file's `name`, a certificate's SAN or CN).
    pub name: String,
    /// The groups it belongs to.
    pub groups: Vec<String>,
    /// How it proved who it is.
    pub via: Via,
}

/// How an identity was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A client certificate signed by the client CA.
    Certificate,
    /// A bearer token.
    Token,
    /// Nothing: access control is off (a server on loopback without any
    /// identity source), and every caller may do everything.
    Unchecked,
}

/// A power over the trail or the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// Read events: search, histogram, history, diff, index statistics.
    Read,
    /// Bulk copies that leave the system: export.
    Export,
    /// Add events (`IngestBatch`): only the ingestor.
    Ingest,
    /// Read the ingestor's status and dead letters.
    Status,
    /// Compute audit policies and set-ups from what the caller sends
    /// (nothing stored is read).
    Policy,
    /// Apply a set-up to the cluster.
    Apply,
    /// Delete events (`ApplyRetention`).
    Delete,
    /// Read report definitions and results.
    ReadReports,
    /// Create, change, delete and run report definitions.
    ManageReports,
    /// Read the access records (the trail of the trail: who called what).
    /// Separate from `read`, so that those who read the trail do not
    /// also learn what others looked at.
    ReadAccess,
    /// Store access records (`RecordAccess`): the auditrail processes that
    /// serve calls without an indexer beside them. Never an ingestor's.
    RecordAccess,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Self; 11] = [
        Self::Read,
        Self::Export,
        Self::Ingest,
        Self::Status,
        Self::Policy,
        Self::Apply,
        Self::Delete,
        Self::ReadReports,
        Self::ManageReports,
        Self::ReadAccess,
        Self::RecordAccess,
    ];

    /// Its name in roles files and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Export => "export",
            Self::Ingest => "ingest",
            Self::Status => "status",
            Self::Policy => "policy",
            Self::Apply => "apply",
            Self::Delete => "delete",
            Self::ReadReports => "read_reports",
            Self::ManageReports => "manage_reports",
            Self::ReadAccess => "read_access",
            Self::RecordAccess => "record_access",
        }
    }

    /// The permission named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// Whether the permission is over events, so a scope of clusters and
    /// types limits it.
    pub fn scoped(self) -> bool {
        matches!(
            self,
            Self::Read | Self::Export | Self::Ingest | Self::Delete
        )
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The API group of the virtual resources a Kubernetes
/// SubjectAccessReview asks about (no such API is served: RBAC rules on it
/// are what grant auditrail permissions, as Calico's `lma.tigera.io` does).
pub const KUBERNETES_GROUP: &str = "auditrail.io";

/// What a SubjectAccessReview asks for `permission`: a verb and the
/// `auditrail.io` resources, each alone enough (reading asks per event
/// type, `kube` and `ee`, and the scope holds the types allowed).
pub fn kubernetes_attributes(permission: Permission) -> (&'static str, &'static [&'static str]) {
    match permission {
        Permission::Read => ("get", &["kube", "ee"]),
        Permission::Export => ("create", &["exports"]),
        Permission::Ingest => ("create", &["events"]),
        Permission::Delete => ("delete", &["events"]),
        Permission::Status => ("get", &["ingeststatus"]),
        Permission::Policy => ("create", &["policies"]),
        Permission::Apply => ("create", &["setups"]),
        Permission::ReadReports => ("get", &["reports"]),
        Permission::ManageReports => ("create", &["reports"]),
        Permission::ReadAccess => ("get", &["accessrecords"]),
        Permission::RecordAccess => ("create", &["accessrecords"]),
    }
}

//! The audit policies auditrail recommends, and the compliance lint of any
//! audit policy.
//!
//! `auditrail-policy` mirrors kube-apiserver: what a policy *means*. This
//! crate holds the product's opinions on top of it: which requests a
//! network-policy audit trail needs ([`generate`]), and what in a policy that
//! the API server would accept still defeats compliance ([`lint`]). Both are
//! pure functions over the policy model, so the provisioner service, the CLI
//! and the set-up rendering share them and tests need no cluster.
//!
//! ```
//! use auditrail_policy::{Level, RequestAttributes, ResourceAttributes};
//! use auditrail_policy_gen::{PolicyRequest, Profile, generate, lint};
//!
//! let generated = generate(&PolicyRequest::new(Profile::NetworkPolicy))?;
//! let policy = generated.policy.validate()?;
//! let delete = RequestAttributes::resource(
//!     "delete",
//!     ResourceAttributes::new("networking.k8s.io", "networkpolicies").in_namespace("prod"),
//! );
//! assert_eq!(policy.evaluate(&delete).level, Level::RequestResponse);
//! assert!(lint(&policy).is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod lint;
mod profile;
mod resources;

pub use error::GenerateError;
pub use lint::{Finding, LintCode, Severity, lint};
pub use profile::{AuditApiVersion, GeneratedPolicy, PolicyRequest, Profile, generate};
pub use resources::{
    CALICO_GROUP, CALICO_RESOURCES, GroupResource, KUBERNETES_COMPLIANCE_RESOURCES, WRITE_VERBS,
};

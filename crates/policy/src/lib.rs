//! The Kubernetes audit `Policy` and the API server's rule matching.
//!
//! auditrail has to reason about audit policies the way kube-apiserver does:
//! check a policy before it is deployed, explain why an event was (or was not)
//! recorded at a given level, and predict what a change would record. This
//! crate models `audit.k8s.io/v1` (and the removed `v1beta1`) `Policy`
//! documents and reproduces upstream's loading, validation and matching
//! semantics exactly. It does no I/O.
//!
//! - [`model`]: the serde model, [`Level`] and [`Stage`].
//! - [`load`](Policy::from_yaml): decoding with the API server's loader checks.
//! - [`validate`]: `ValidatePolicy`, with apimachinery-formatted errors.
//! - [`matcher`]: first-match rule evaluation of request attributes.
//! - [`RequestAttributes::from_event`]: the attributes behind a recorded
//!   audit event, to evaluate a policy against real traffic.
//! - [`error`]: the error types.
//!
//! ```
//! use auditrail_policy::{Level, Policy, RequestAttributes, ResourceAttributes};
//!
//! let policy = Policy::from_yaml(
//!     "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  resources:\n  - group: \"\"\n    resources: [\"pods/*\"]\n",
//! )?
//! .validate()?;
//! let get_log = RequestAttributes::resource(
//!     "get",
//!     ResourceAttributes::new("", "pods").in_namespace("default").with_subresource("log"),
//! );
//! assert_eq!(policy.evaluate(&get_log).level, Level::Metadata);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod error;
mod from_event;
mod load;
pub mod matcher;
pub mod model;
mod quote;
pub mod validate;

pub use error::{
    BadValue, EncodeError, FieldError, FieldErrorType, LoadError, UnknownLevel, UnknownStage,
    ValidationErrors,
};
pub use load::{MAX_POLICY_BYTES, MAX_POLICY_DEPTH, MAX_POLICY_VALUES};
pub use matcher::{AuditDecision, RequestAttributes, RequestTarget, ResourceAttributes, UserInfo};
pub use model::{
    API_VERSION_V1, API_VERSION_V1BETA1, GroupResources, KIND_POLICY, Level, Policy, PolicyRule,
    Stage,
};
pub use validate::{ValidatedPolicy, ValidatedRule};

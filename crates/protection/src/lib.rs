//! The policy calculator: which policies protect which endpoints.
//!
//! An inventory or network-access report says, for every endpoint (a pod or
//! a Calico host endpoint) of the cluster as it was
//! (`auditrail-replay`'s state), which policies select it and what they
//! let through, as Calico Enterprise's compliance reports did. This crate
//! computes that with no I/O, from Kubernetes NetworkPolicies and Calico
//! policies (tiers and order, the Calico selector language through
//! `auditrail-calico-selector`, namespace and service-account selectors,
//! `types`, staged policies that never enforce).
//!
//! - [`model`]: the endpoints, namespaces, service accounts, network sets
//!   and services of a state, with the labels Calico evaluates selectors on.
//! - [`k8s`]: Kubernetes `LabelSelector`s.
//! - [`nets`]: which CIDRs hold public addresses.
//! - [`policy`]: Kubernetes and Calico policies read into one form: whom
//!   they select, in which directions, and what their allow rules admit.
//! - [`calc`]: the per-endpoint [`Flags`], applied policies and services.
//! - [`ever`]: the "ever" aggregation of flags over a report's interval.
//! - [`incremental`]: the calculator kept up to date through an interval,
//!   working out again only the answers a change can affect.
//!
//! What the flags mean (the reports' documentation repeats it):
//!
//! - `ingress_protected` / `egress_protected`: some enforced policy (not a
//!   staged one) selects the endpoint with that direction in its types.
//! - `ingress_from_internet` / `egress_to_internet`: some allow rule of an
//!   enforced policy selecting the endpoint admits a public address: a
//!   rule with no peer restriction, a net (ipBlock, `nets`) not wholly in
//!   the private ranges (RFC 1918, loopback, link-local, IPv6 ULA) once
//!   its exceptions are taken out, or a (Global)NetworkSet with such nets
//!   that the rule selects. A direction no enforced policy protects admits
//!   everything for a pod (Kubernetes' and Calico's default), so it is
//!   open to the internet and to every namespace; a host endpoint without
//!   profiles denies it instead (Calico's default for host endpoints).
//! - `ingress_from_other_namespaces` / `egress_to_other_namespaces`: some
//!   allow rule admits endpoints of a namespace other than the endpoint's
//!   own (for a host endpoint: of any namespace).
//!
//! Selectors are evaluated on the state given: a namespace selector admits
//! the namespaces that exist then (with their labels then), a global
//! policy's rule selector the namespaces of the pods it matches then.
//!
//! Rules are read one by one, not evaluated in order: a deny or pass
//! earlier in the tiers does not clear a flag an allow rule sets. The
//! flags say what the policies may let through, which is what an auditor
//! asks; ports never narrow them.

pub mod calc;
pub mod ever;
pub mod incremental;
pub mod k8s;
pub mod model;
pub mod nets;
pub mod policy;

pub use calc::{AppliedPolicy, Calculation, EndpointReport, Flags, calculate};
pub use ever::Ever;
pub use incremental::{Changed, Tracker};
pub use model::{EndpointId, EndpointKind, NamespacedName};
pub use policy::{PolicyError, PolicyRef};

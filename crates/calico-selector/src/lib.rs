//! The Calico label selector language, as Calico policies use it.
//!
//! Reports must decide which Calico policies select which endpoints, from
//! the policies' `selector`, `namespaceSelector` and
//! `serviceAccountSelector` fields and the selectors of their rules. Those
//! are written in Calico's own selector language, which is not Kubernetes'
//! `LabelSelector` and not auditrail's event selector
//! (`auditrail-selector`): this crate is that language, with no I/O.
//!
//! - [`parse`] turns a selector into a [`Selector`] tree; a mistake is a
//!   [`SelectorError`] naming the byte position and what was expected, e.g.
//!   `selector "a == " at 5: expected a quoted value`.
//! - [`Selector::matches`] evaluates a selector on a set of [`Labels`].
//! - [`Selector`]'s `Display` prints a selector that parses back to the
//!   same tree.
//!
//! Grammar (precedence `!` > `&&` > `||`; the words `has`, `all`,
//! `global`, `in`, `not`, `contains`, `starts`, `ends` and `with` are
//! keywords only where the grammar expects them, so a label may be called
//! `in`):
//!
//! ```text
//! selector := "" | or
//! or       := and ("||" and)*
//! and      := unary ("&&" unary)*
//! unary    := "!" unary | "(" or ")" | "all()" | "global()" | "has(" KEY ")"
//!           | KEY ("==" | "!=" | "contains" | "starts with" | "ends with") VALUE
//!           | KEY ("in" | "not in") "{" [VALUE ("," VALUE)*] "}"
//! KEY      := [A-Za-z0-9_./-]+
//! VALUE    := '"' [^"]* '"' | "'" [^']* "'"
//! ```
//!
//! Meaning, as in Calico: `k == v`, `in`, `contains`, `starts with` and
//! `ends with` need the label to be present; `k != v` and `not in` also
//! hold when it is absent; `all()` (and the empty selector) holds always;
//! `global()` holds for objects that are in no namespace, which Calico
//! tells by the absence of the label [`NAMESPACE_LABEL`].

mod ast;
mod error;
mod lexer;
mod parser;

pub use ast::{Labels, NAMESPACE_LABEL, Selector};
pub use error::{Found, SelectorError};
pub use parser::{MAX_DEPTH, parse};

//! The parsed selector: a tree that can be evaluated on labels and printed
//! back as a selector that parses to the same tree.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::lexer::is_word_char;

/// The label Calico gives every namespaced endpoint and network set: its
/// namespace. `global()` holds exactly for label sets without it.
pub const NAMESPACE_LABEL: &str = "projectcalico.org/namespace";

/// Something a selector can be evaluated on: a label lookup.
pub trait Labels {
    /// The value of the label `key`, when the object has it.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }
}

/// A parsed Calico selector.
///
/// `And` and `Or` hold the operands of one chain (`a && b && c` is one
/// `And` of three); a parenthesised chain inside another is its own node,
/// so printing and parsing again gives the same tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// `all()`, and the empty selector: holds for everything.
    All,
    /// `global()`: holds for objects in no namespace.
    Global,
    /// `has(key)`.
    Has(String),
    /// `key == "value"`.
    Equals(String, String),
    /// `key != "value"` (also holds when the label is absent).
    NotEquals(String, String),
    /// `key in {"a", "b"}`.
    In(String, Vec<String>),
    /// `key not in {"a", "b"}` (also holds when the label is absent).
    NotIn(String, Vec<String>),
    /// `key contains "s"`.
    Contains(String, String),
    /// `key starts with "s"`.
    StartsWith(String, String),
    /// `key ends with "s"`.
    EndsWith(String, String),
    /// `!operand`.
    Not(Box<Selector>),
    /// `a && b && …`, two operands or more.
    And(Vec<Selector>),
    /// `a || b || …`, two operands or more.
    Or(Vec<Selector>),
}

impl Selector {
    /// Whether the selector holds for an object with these labels.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        match self {
            Self::All => true,
            Self::Global => labels.label(NAMESPACE_LABEL).is_none(),
            Self::Has(k) => labels.label(k).is_some(),
            Self::Equals(k, v) => labels.label(k) == Some(v.as_str()),
            Self::NotEquals(k, v) => labels.label(k) != Some(v.as_str()),
            Self::In(k, set) => labels.label(k).is_some_and(|l| set.iter().any(|v| v == l)),
            Self::NotIn(k, set) => !labels.label(k).is_some_and(|l| set.iter().any(|v| v == l)),
            Self::Contains(k, v) => labels.label(k).is_some_and(|l| l.contains(v.as_str())),
            Self::StartsWith(k, v) => labels.label(k).is_some_and(|l| l.starts_with(v.as_str())),
            Self::EndsWith(k, v) => labels.label(k).is_some_and(|l| l.ends_with(v.as_str())),
            Self::Not(s) => !s.matches(labels),
            Self::And(all) => all.iter().all(|s| s.matches(labels)),
            Self::Or(any) => any.iter().any(|s| s.matches(labels)),
        }
    }

    /// Whether the selector is `all()` (or empty), which selects everything.
    pub fn is_all(&self) -> bool {
        matches!(self, Self::All)
    }
}

/// A value as the language quotes it: double quotes, or single quotes when
/// the value holds a double quote (a value holding both cannot be written).
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.contains('"') {
            write!(f, "'{}'", self.0)
        } else {
            write!(f, "\"{}\"", self.0)
        }
    }
}

/// A key as written; keys the lexer would not read as one word cannot come
/// from the parser, and are printed as they are.
struct Key<'a>(&'a str);

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_assert!(self.0.chars().all(is_word_char));
        f.write_str(self.0)
    }
}

fn write_set(f: &mut fmt::Formatter<'_>, set: &[String]) -> fmt::Result {
    f.write_str("{")?;
    for (i, v) in set.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}", Quoted(v))?;
    }
    f.write_str("}")
}

/// Writes `operand` of a chain, in parentheses when it is itself a chain
/// that would otherwise merge into the outer one or bind differently.
fn write_operand(f: &mut fmt::Formatter<'_>, operand: &Selector, in_and: bool) -> fmt::Result {
    let wrap = match operand {
        Selector::Or(_) => true,
        Selector::And(_) => in_and,
        _ => false,
    };
    if wrap {
        write!(f, "({operand})")
    } else {
        write!(f, "{operand}")
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all()"),
            Self::Global => f.write_str("global()"),
            Self::Has(k) => write!(f, "has({})", Key(k)),
            Self::Equals(k, v) => write!(f, "{} == {}", Key(k), Quoted(v)),
            Self::NotEquals(k, v) => write!(f, "{} != {}", Key(k), Quoted(v)),
            Self::In(k, set) => {
                write!(f, "{} in ", Key(k))?;
                write_set(f, set)
            }
            Self::NotIn(k, set) => {
                write!(f, "{} not in ", Key(k))?;
                write_set(f, set)
            }
            Self::Contains(k, v) => write!(f, "{} contains {}", Key(k), Quoted(v)),
            Self::StartsWith(k, v) => write!(f, "{} starts with {}", Key(k), Quoted(v)),
            Self::EndsWith(k, v) => write!(f, "{} ends with {}", Key(k), Quoted(v)),
            Self::Not(s) => match **s {
                Self::And(_) | Self::Or(_) => write!(f, "!({s})"),
                _ => write!(f, "!{s}"),
            },
            Self::And(all) => {
                for (i, s) in all.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" && ")?;
                    }
                    write_operand(f, s, true)?;
                }
                Ok(())
            }
            Self::Or(any) => {
                for (i, s) in any.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" || ")?;
                    }
                    write_operand(f, s, false)?;
                }
                Ok(())
            }
        }
    }
}

impl std::str::FromStr for Selector {
    type Err = crate::SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::parse(s)
    }
}

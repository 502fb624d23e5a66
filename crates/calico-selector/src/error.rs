//! Why a selector was refused: people write selectors by hand in policies
//! and report definitions, so every error names the selector, the byte
//! position of the problem and what was expected there.

use std::fmt;

/// What stood where something else was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The selector ended.
    End,
    /// This text (a token or a character).
    Text(String),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::End => Ok(()),
            Self::Text(text) => write!(f, ", found `{text}`"),
        }
    }
}

/// A selector that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// Something else was expected at `position`.
    #[error("selector {input:?} at {position}: expected {expected}{found}")]
    Expected {
        /// The selector as given.
        input: String,
        /// Byte offset of the problem (the selector's length when it ended
        /// too early).
        position: usize,
        /// What the grammar allows there, in words.
        expected: &'static str,
        /// What was there instead.
        found: Found,
    },
    /// A quoted value has no closing quote.
    #[error("selector {input:?} at {position}: the value opened here has no closing {quote}")]
    UnterminatedString {
        /// The selector as given.
        input: String,
        /// Byte offset of the opening quote.
        position: usize,
        /// The quote that is missing.
        quote: char,
    },
    /// Parentheses and `!` nest deeper than [`crate::MAX_DEPTH`].
    #[error("selector {input:?} at {position}: nested deeper than {max} levels")]
    TooDeep {
        /// The selector as given.
        input: String,
        /// Byte offset of the first level too deep.
        position: usize,
        /// The deepest nesting allowed.
        max: usize,
    },
}

impl SelectorError {
    /// The byte offset of the problem in the selector.
    pub fn position(&self) -> usize {
        match self {
            Self::Expected { position, .. }
            | Self::UnterminatedString { position, .. }
            | Self::TooDeep { position, .. } => *position,
        }
    }
}

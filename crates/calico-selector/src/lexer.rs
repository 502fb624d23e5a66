//! Splits a selector into tokens with their byte positions, so the parser
//! can say where a problem is. Words are not classified here: whether
//! `in` is an operator or a label depends on where it stands, which only
//! the parser knows.

use crate::error::SelectorError;

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A word: a label key or a keyword (`[A-Za-z0-9_./-]+`).
    Word(String),
    /// A quoted value, without its quotes.
    Str(String),
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Not,
    And,
    Or,
    Eq,
    Ne,
    /// A character the language has no use for.
    Other(char),
    End,
}

impl Tok {
    /// How an error shows the token.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Word(w) => w.clone(),
            Self::Str(s) => format!("{s:?}"),
            Self::LParen => "(".into(),
            Self::RParen => ")".into(),
            Self::LBrace => "{".into(),
            Self::RBrace => "}".into(),
            Self::Comma => ",".into(),
            Self::Not => "!".into(),
            Self::And => "&&".into(),
            Self::Or => "||".into(),
            Self::Eq => "==".into(),
            Self::Ne => "!=".into(),
            Self::Other(c) => c.to_string(),
            Self::End => String::new(),
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) start: usize,
}

/// Whether `c` may be part of a word.
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')
}

/// The tokens of `input`, ending with [`Tok::End`] at `input.len()`.
pub(crate) fn lex(input: &str) -> Result<Vec<Token>, SelectorError> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let two = |next: char, chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
            if chars.peek().map(|&(_, n)| n) == Some(next) {
                chars.next();
                true
            } else {
                false
            }
        };
        let tok = match c {
            c if c.is_whitespace() => continue,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            ',' => Tok::Comma,
            '!' if two('=', &mut chars) => Tok::Ne,
            '!' => Tok::Not,
            '=' if two('=', &mut chars) => Tok::Eq,
            '&' if two('&', &mut chars) => Tok::And,
            '|' if two('|', &mut chars) => Tok::Or,
            '"' | '\'' => {
                let body = start + 1;
                match input[body..].find(c) {
                    Some(len) => {
                        // Skip the body and the closing quote.
                        while chars.next_if(|&(i, _)| i <= body + len).is_some() {}
                        Tok::Str(input[body..body + len].to_owned())
                    }
                    None => {
                        return Err(SelectorError::UnterminatedString {
                            input: input.to_owned(),
                            position: start,
                            quote: c,
                        });
                    }
                }
            }
            c if is_word_char(c) => {
                let mut end = start + c.len_utf8();
                while let Some((i, n)) = chars.next_if(|&(_, n)| is_word_char(n)) {
                    end = i + n.len_utf8();
                }
                Tok::Word(input[start..end].to_owned())
            }
            c => Tok::Other(c),
        };
        tokens.push(Token { tok, start });
    }
    tokens.push(Token {
        tok: Tok::End,
        start: input.len(),
    });
    Ok(tokens)
}

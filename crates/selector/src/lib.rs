//! The auditrail selector language: `key op value` comparisons combined with
//! `AND`, `OR`, `NOT` and parentheses, e.g.
//!
//! ```text
//! verb IN {create, delete} AND objectRef.namespace = kube-system
//!     AND NOT user.username = "system:admin" AND responseStatus.code >= 400
//! ```
//!
//! Users type selectors on command lines and in the UI, so a mistake must be
//! reported with the byte position of the problem and with what was expected
//! and what was found; [`parse`] does that and otherwise compiles the
//! selector straight to the store's [`Query`] value. Values are validated
//! per key here (levels, stages, status codes, IP addresses, timestamps), so
//! backends only ever see well-typed queries and never query text.
//!
//! Grammar (precedence `NOT` > `AND` > `OR`, all left-associative; the
//! keywords `AND OR NOT IN NOTIN` are case-insensitive, so a value spelled
//! like one must be quoted):
//!
//! ```text
//! expr       := and (("OR" | "||") and)*
//! and        := unary (("AND" | "&&") unary)*
//! unary      := ("NOT" | "!") unary | "(" expr ")" | comparison
//! comparison := KEY ("=" | "==" | "!=" | "<" | "<=" | ">" | ">=") VALUE
//!             | KEY ("IN" | "NOTIN") ("{" values "}" | "(" values ")")
//! values     := VALUE ("," VALUE)*
//! ```
//!
//! A value is a bareword (anything but whitespace and `(){},=!<>&|"'`) or a
//! single- or double-quoted string with the escapes `\"`, `\'` and `\\`.

use std::borrow::Cow;
use std::net::IpAddr;
use std::ops::Bound;

use auditrail_event::meaning::KNOWN_VERBS;
use auditrail_event::{Level, Stage};
use auditrail_store::{Field, Query, Value};
use jiff::Timestamp;

#[cfg(test)]
mod tests;

/// Why a selector was rejected, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct SelectorError {
    /// Byte offset into the input where the problem is (the input's length
    /// when the input ended too early).
    pub position: usize,
    /// What was expected and what was found.
    pub message: String,
}

impl SelectorError {
    fn new(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }

    /// The 1-based column, in characters, of [`position`](Self::position)
    /// in `input` (the string that was parsed), for pointing at the problem.
    pub fn column(&self, input: &str) -> usize {
        input
            .get(..self.position)
            .map_or(self.position, |before| before.chars().count())
            + 1
    }
}

/// Every key a selector may compare, as spelled in the Kubernetes audit
/// event JSON (keys are case-sensitive).
pub const KEYS: &[&str] = &KEY_NAMES;

/// The deepest nesting of `NOT`/`!` and parentheses a selector may have.
/// Every walk of the compiled query (backends, dropping it) recurses once
/// per level, so the bound keeps a hostile selector from exhausting a
/// server thread's stack; people never come near it.
pub const MAX_DEPTH: usize = 64;

/// The longest selector accepted, in bytes.
pub const MAX_LEN: usize = 64 * 1024;

/// The most characters of the input an error quotes.
const QUOTE_CHARS: usize = 60;

/// `text` as an error quotes it: whole when short, else its start and how
/// long it was, so that an error never echoes a huge input back.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

/// Parses a selector and compiles it to a store [`Query`]. An empty or
/// all-whitespace selector matches every event ([`Query::All`]).
pub fn parse(input: &str) -> Result<Query, SelectorError> {
    if input.trim().is_empty() {
        return Ok(Query::All);
    }
    if input.len() > MAX_LEN {
        // The first byte past the bound, or the start of the character
        // that holds it, so that the position is one `column` can show.
        return Err(SelectorError::new(
            input.floor_char_boundary(MAX_LEN),
            format!(
                "the selector is {} bytes long; at most {MAX_LEN} are accepted",
                input.len()
            ),
        ));
    }
    let mut parser = Parser {
        input,
        tokens: lex(input),
        next: 0,
        depth: 0,
    };
    let query = parser.or()?;
    let tok = parser.peek();
    match tok.tok {
        Tok::End => Ok(query),
        Tok::RParen => Err(SelectorError::new(
            tok.start,
            "unbalanced parenthesis: this ')' has no matching '('",
        )),
        _ => Err(parser.unexpected(tok, "AND, OR or end of input")),
    }
}

/// How a key's values are checked and converted, and which operators apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Any string, `""` meaning empty or absent.
    Keyword,
    /// A kind as people write it (`NetworkPolicy`, `netpol`,
    /// `networkpolicies`), compiled through the one resource table to the
    /// resources it names ([`Query::kind`]).
    ObjectType,
    Level,
    Stage,
    /// A verb the API server writes (`auditrail_event::meaning::KNOWN_VERBS`).
    Verb,
    /// An HTTP status code.
    Code,
    Ip,
    Time,
}

impl Kind {
    /// Whether `<`, `<=`, `>` and `>=` apply.
    fn is_ordered(self) -> bool {
        matches!(self, Self::Code | Self::Time)
    }
}

struct KeySpec {
    name: &'static str,
    field: Field,
    kind: Kind,
}

const fn key(name: &'static str, field: Field, kind: Kind) -> KeySpec {
    KeySpec { name, field, kind }
}

const SPECS: [KeySpec; 19] = [
    key("level", Field::Level, Kind::Level),
    key("stage", Field::Stage, Kind::Stage),
    key("verb", Field::Verb, Kind::Verb),
    key("responseStatus.code", Field::ResponseCode, Kind::Code),
    key("sourceIPs", Field::SourceIps, Kind::Ip),
    key(
        "requestReceivedTimestamp",
        Field::RequestReceived,
        Kind::Time,
    ),
    key("stageTimestamp", Field::StageTimestamp, Kind::Time),
    key("name", Field::Name, Kind::Keyword),
    key("objectRef.name", Field::ObjectName, Kind::Keyword),
    key("objectRef.namespace", Field::Namespace, Kind::Keyword),
    key("objectRef.resource", Field::Resource, Kind::Keyword),
    key("objectRef.apiGroup", Field::ApiGroup, Kind::Keyword),
    key("objectRef.apiVersion", Field::ApiVersion, Kind::Keyword),
    key("objectRef.subresource", Field::Subresource, Kind::Keyword),
    key("auditID", Field::AuditId, Kind::Keyword),
    key("kind", Field::Kind, Kind::ObjectType),
    key("requestURI", Field::RequestUri, Kind::Keyword),
    key("user.username", Field::Username, Kind::Keyword),
    key("user.groups", Field::UserGroups, Kind::Keyword),
];

const KEY_NAMES: [&str; SPECS.len()] = {
    let mut names = [""; SPECS.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = SPECS[i].name;
        i += 1;
    }
    names
};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::In => "IN",
            Self::NotIn => "NOTIN",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Op(Op),
    And,
    Or,
    Not,
    /// A bareword; its text is the token's span.
    Word,
    /// A quoted string, unescaped.
    Quoted(String),
    End,
    /// A lexing error; always the last token.
    Invalid(String),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

/// Splits the input into tokens ending with [`Tok::End`], or with
/// [`Tok::Invalid`] at the first lexing error, so that the parser reports
/// whichever problem comes first in the input.
fn lex(input: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &input[pos..];
        let trimmed = rest.trim_start();
        pos += rest.len() - trimmed.len();
        let token = lex_one(trimmed, pos).unwrap_or_else(|e| Token {
            tok: Tok::Invalid(e.message),
            start: e.position,
            end: e.position,
        });
        let last = matches!(token.tok, Tok::End | Tok::Invalid(_));
        pos = token.end;
        tokens.push(token);
        if last {
            return tokens;
        }
    }
}

fn is_bareword_char(c: char) -> bool {
    !c.is_whitespace() && !"(){},=!<>&|\"'".contains(c)
}

/// Lexes the token at the start of `rest`, which begins at byte `start`.
fn lex_one(rest: &str, start: usize) -> Result<Token, SelectorError> {
    let mut chars = rest.chars();
    let Some(c) = chars.next() else {
        return Ok(Token {
            tok: Tok::End,
            start,
            end: start,
        });
    };
    let second = chars.next();
    let (tok, len) = match (c, second) {
        ('(', _) => (Tok::LParen, 1),
        (')', _) => (Tok::RParen, 1),
        ('{', _) => (Tok::LBrace, 1),
        ('}', _) => (Tok::RBrace, 1),
        (',', _) => (Tok::Comma, 1),
        ('=', Some('=')) => (Tok::Op(Op::Eq), 2),
        ('=', _) => (Tok::Op(Op::Eq), 1),
        ('!', Some('=')) => (Tok::Op(Op::Ne), 2),
        ('!', _) => (Tok::Not, 1),
        ('<', Some('=')) => (Tok::Op(Op::Le), 2),
        ('<', _) => (Tok::Op(Op::Lt), 1),
        ('>', Some('=')) => (Tok::Op(Op::Ge), 2),
        ('>', _) => (Tok::Op(Op::Gt), 1),
        ('&', Some('&')) => (Tok::And, 2),
        ('|', Some('|')) => (Tok::Or, 2),
        ('&' | '|', _) => {
            return Err(SelectorError::new(
                start,
                format!("expected \"{c}{c}\", found a single \"{c}\""),
            ));
        }
        ('"' | '\'', _) => return lex_quoted(rest, start, c),
        _ => {
            let len = rest.find(|c| !is_bareword_char(c)).unwrap_or(rest.len());
            let word = &rest[..len];
            let keyword = [
                ("AND", Tok::And),
                ("OR", Tok::Or),
                ("NOT", Tok::Not),
                ("IN", Tok::Op(Op::In)),
                ("NOTIN", Tok::Op(Op::NotIn)),
            ]
            .into_iter()
            .find(|(k, _)| word.eq_ignore_ascii_case(k));
            (keyword.map_or(Tok::Word, |(_, tok)| tok), len)
        }
    };
    Ok(Token {
        tok,
        start,
        end: start + len,
    })
}

/// Lexes a string quoted with `quote` (one byte) at the start of `rest`.
fn lex_quoted(rest: &str, start: usize, quote: char) -> Result<Token, SelectorError> {
    let mut value = String::new();
    let mut chars = rest.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Ok(Token {
                tok: Tok::Quoted(value),
                start,
                end: start + i + 1,
            });
        }
        if c != '\\' {
            value.push(c);
            continue;
        }
        match chars.next() {
            Some((_, escaped @ ('"' | '\'' | '\\'))) => value.push(escaped),
            Some((_, other)) => {
                return Err(SelectorError::new(
                    start + i,
                    format!(
                        "expected an escape (\\\" \\' or \\\\) after the backslash, found \"\\{other}\""
                    ),
                ));
            }
            None => break,
        }
    }
    Err(SelectorError::new(
        start,
        format!("unterminated string: this {quote} is never closed"),
    ))
}

struct Parser<'a> {
    input: &'a str,
    /// Never empty; ends with [`Tok::End`] or [`Tok::Invalid`].
    tokens: Vec<Token>,
    next: usize,
    /// How many `NOT`s and parentheses enclose the current position.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Token {
        &self.tokens[self.next]
    }

    /// Returns the next token and moves past it (but never past the last).
    fn bump(&mut self) -> Token {
        let token = self.tokens[self.next].clone();
        if self.next + 1 < self.tokens.len() {
            self.next += 1;
        }
        token
    }

    fn text(&self, token: &Token) -> &'a str {
        &self.input[token.start..token.end]
    }

    /// The error for finding `token` where `expected` should be (or the
    /// lexing error, if `token` is one).
    fn unexpected(&self, token: &Token, expected: &str) -> SelectorError {
        let found = match &token.tok {
            Tok::Invalid(message) => return SelectorError::new(token.start, message.clone()),
            Tok::End => "end of input".to_owned(),
            Tok::Quoted(s) => format!("string {}", quoted(s)),
            _ => quoted(self.text(token)),
        };
        SelectorError::new(token.start, format!("expected {expected}, found {found}"))
    }

    fn or(&mut self) -> Result<Query, SelectorError> {
        let mut items = vec![self.and()?];
        while self.peek().tok == Tok::Or {
            self.bump();
            items.push(self.and()?);
        }
        Ok(collapse(items, Query::Or))
    }

    fn and(&mut self) -> Result<Query, SelectorError> {
        let mut items = vec![self.unary()?];
        while self.peek().tok == Tok::And {
            self.bump();
            items.push(self.unary()?);
        }
        Ok(collapse(items, Query::And))
    }

    /// Enters one more level of `NOT` or parentheses at `token`, refusing
    /// to go deeper than [`MAX_DEPTH`].
    fn descend(&mut self, token: &Token) -> Result<(), SelectorError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SelectorError::new(
                token.start,
                format!(
                    "the selector nests NOT, '!' and parentheses more than {MAX_DEPTH} levels deep"
                ),
            ));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Query, SelectorError> {
        let token = self.bump();
        match token.tok {
            Tok::Not => {
                self.descend(&token)?;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(Query::Not(Box::new(inner)))
            }
            Tok::LParen => {
                self.descend(&token)?;
                let inner = self.or()?;
                self.depth -= 1;
                let close = self.bump();
                match close.tok {
                    Tok::RParen => Ok(inner),
                    Tok::End => Err(SelectorError::new(
                        token.start,
                        "unbalanced parenthesis: this '(' is never closed",
                    )),
                    _ => Err(self.unexpected(&close, "AND, OR or ')'")),
                }
            }
            Tok::Word => self.comparison(&token),
            _ => Err(self.unexpected(&token, "a key, NOT or '('")),
        }
    }

    fn comparison(&mut self, key: &Token) -> Result<Query, SelectorError> {
        let name = self.text(key);
        let spec = SPECS
            .iter()
            .find(|spec| spec.name == name)
            .ok_or_else(|| unknown_key(key.start, name))?;
        let op_token = self.bump();
        let Tok::Op(op) = op_token.tok else {
            return Err(self.unexpected(
                &op_token,
                &format!("a comparison operator (= != < <= > >= IN NOTIN) after key {name:?}"),
            ));
        };
        let op_text = self.text(&op_token);
        let field = spec.field;
        let range = |lower, upper| Query::Range {
            field,
            lower,
            upper,
        };
        if spec.kind == Kind::ObjectType {
            return self.kind_comparison(spec, op, &op_token, op_text);
        }
        match op {
            Op::In => return Ok(Query::In(field, self.list(spec, op_text)?)),
            Op::NotIn => {
                let values = self.list(spec, op_text)?;
                return Ok(Query::Not(Box::new(Query::In(field, values))));
            }
            Op::Lt | Op::Le | Op::Gt | Op::Ge if !spec.kind.is_ordered() => {
                return Err(SelectorError::new(
                    op_token.start,
                    format!(
                        "operator {} does not apply to key {name} (it takes = != IN NOTIN)",
                        op.symbol()
                    ),
                ));
            }
            _ => {}
        }
        let value = self.value(spec, &format!("after '{op_text}'"))?;
        Ok(match op {
            Op::Ne => Query::Not(Box::new(Query::Eq(field, value))),
            Op::Lt => range(Bound::Unbounded, Bound::Excluded(value)),
            Op::Le => range(Bound::Unbounded, Bound::Included(value)),
            Op::Gt => range(Bound::Excluded(value), Bound::Unbounded),
            Op::Ge => range(Bound::Included(value), Bound::Unbounded),
            Op::Eq | Op::In | Op::NotIn => Query::Eq(field, value),
        })
    }

    /// The rest of a comparison on `kind`: each value names a kind the way
    /// people write it and compiles to the resources it stands for.
    fn kind_comparison(
        &mut self,
        spec: &KeySpec,
        op: Op,
        op_token: &Token,
        op_text: &str,
    ) -> Result<Query, SelectorError> {
        let values = match op {
            Op::In | Op::NotIn => self.list(spec, op_text)?,
            Op::Eq | Op::Ne => vec![self.value(spec, &format!("after '{op_text}'"))?],
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                return Err(SelectorError::new(
                    op_token.start,
                    format!(
                        "operator {} does not apply to key {} (it takes = != IN NOTIN)",
                        op.symbol(),
                        spec.name
                    ),
                ));
            }
        };
        // `convert` gives every `kind` value as a string.
        let kinds = values
            .iter()
            .filter_map(|v| match v {
                Value::Str(name) => Some(Query::kind(name)),
                _ => None,
            })
            .collect();
        let any = collapse(kinds, Query::Or);
        Ok(match op {
            Op::Ne | Op::NotIn => Query::Not(Box::new(any)),
            _ => any,
        })
    }

    /// Parses `{v, ...}` or `(v, ...)` after `IN` or `NOTIN` (`op`).
    fn list(&mut self, spec: &KeySpec, op: &str) -> Result<Vec<Value>, SelectorError> {
        let open = self.bump();
        let (close, close_char) = match open.tok {
            Tok::LBrace => (Tok::RBrace, '}'),
            Tok::LParen => (Tok::RParen, ')'),
            _ => {
                let expected = format!("'{{' or '(' to start a list after {op}");
                return Err(self.unexpected(&open, &expected));
            }
        };
        let mut values = Vec::new();
        let mut after = Cow::Owned(format!("in the list after {op}"));
        loop {
            if self.peek().tok == close {
                let hint = if values.is_empty() {
                    "a list needs at least one value"
                } else {
                    "trailing commas are not allowed"
                };
                let err = self.unexpected(self.peek(), &format!("a value {after}"));
                return Err(SelectorError::new(
                    err.position,
                    format!("{} ({hint})", err.message),
                ));
            }
            values.push(self.value(spec, &after)?);
            let next = self.bump();
            match next.tok {
                Tok::Comma => after = Cow::Borrowed("after ','"),
                tok if tok == close => return Ok(values),
                _ => return Err(self.unexpected(&next, &format!("',' or '{close_char}'"))),
            }
        }
    }

    /// Parses a value for `spec`'s key; `after` says where, for errors.
    fn value(&mut self, spec: &KeySpec, after: &str) -> Result<Value, SelectorError> {
        let token = self.bump();
        let text = match &token.tok {
            Tok::Word => self.text(&token),
            Tok::Quoted(s) => s.as_str(),
            tok => {
                let mut err = self.unexpected(&token, &format!("a value {after}"));
                if matches!(
                    tok,
                    Tok::And | Tok::Or | Tok::Not | Tok::Op(Op::In | Op::NotIn)
                ) {
                    err.message
                        .push_str(" (quote values that are spelled like keywords)");
                }
                return Err(err);
            }
        };
        convert(spec, text).map_err(|message| SelectorError::new(token.start, message))
    }
}

/// `items` as one query: the item itself if there is one, else `combine`d.
fn collapse(mut items: Vec<Query>, combine: fn(Vec<Query>) -> Query) -> Query {
    if items.len() == 1 {
        items.swap_remove(0)
    } else {
        combine(items)
    }
}

fn unknown_key(position: usize, name: &str) -> SelectorError {
    let hint = KEYS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .map(|k| format!(" (keys are case-sensitive; did you mean {k:?}?)"))
        .unwrap_or_default();
    let known = KEYS.join(", ");
    SelectorError::new(
        position,
        format!("unknown key {}; known keys: {known}{hint}", quoted(name)),
    )
}

/// Checks `text` against `spec`'s kind and converts it to a store value.
fn convert(spec: &KeySpec, text: &str) -> Result<Value, String> {
    let name = spec.name;
    let shown = quoted(text);
    let one_of =
        |all: Vec<&str>| format!("{name} must be one of {}, found {shown}", all.join(", "));
    match spec.kind {
        Kind::Verb | Kind::ObjectType if text.is_empty() => {
            Err(format!("{name} must not be empty"))
        }
        Kind::Keyword | Kind::ObjectType => Ok(Value::Str(text.to_owned())),
        Kind::Verb if KNOWN_VERBS.contains(&text) => Ok(Value::Str(text.to_owned())),
        Kind::Verb => {
            let hint = KNOWN_VERBS
                .iter()
                .find(|v| v.eq_ignore_ascii_case(text))
                .map(|v| format!(" (verbs are lower case: did you mean {v}?)"))
                .unwrap_or_default();
            Err(format!("{}{hint}", one_of(KNOWN_VERBS.to_vec())))
        }
        Kind::Level => text
            .parse::<Level>()
            .map(|level| Value::Str(level.as_str().to_owned()))
            .map_err(|_| one_of(Level::ALL.iter().map(|l| l.as_str()).collect())),
        Kind::Stage => text
            .parse::<Stage>()
            .map(|stage| Value::Str(stage.as_str().to_owned()))
            .map_err(|_| one_of(Stage::ALL.iter().map(|s| s.as_str()).collect())),
        Kind::Code => match text.parse::<i64>() {
            Ok(code) if (100..=599).contains(&code) => Ok(Value::Int(code)),
            _ => Err(format!(
                "{name} must be an HTTP status code from 100 to 599, found {shown}"
            )),
        },
        Kind::Ip => match text.parse::<IpAddr>() {
            Ok(_) => Ok(Value::Str(text.to_owned())),
            Err(_) => Err(format!(
                "{name} must be an IPv4 or IPv6 address, found {shown}"
            )),
        },
        Kind::Time => match text.parse::<Timestamp>() {
            Ok(time) => Ok(Value::Time(time)),
            Err(_) if text.parse::<jiff::civil::DateTime>().is_ok() => Err(format!(
                "{name} must be an RFC 3339 timestamp with a UTC offset, like \
                 2024-05-01T12:00:00Z or 2024-05-01T14:00:00+02:00; found {shown}, which has no offset"
            )),
            Err(_) => Err(format!(
                "{name} must be an RFC 3339 timestamp like 2024-05-01T12:00:00Z, found {shown}"
            )),
        },
    }
}

//! A recursive-descent parser over the lexer's tokens, reporting the first
//! problem with its position and what the grammar allows there.

use crate::ast::Selector;
use crate::error::{Found, SelectorError};
use crate::lexer::{Tok, Token, lex};

/// The deepest nesting of `!` and parentheses accepted: evaluation and
/// printing recurse once per level, so the bound keeps a hostile selector
/// from exhausting a thread's stack. Real selectors nest a few levels.
pub const MAX_DEPTH: usize = 64;

const OPERAND: &str = "a label, has(…), all(), global(), ! or (";
const OPERATOR: &str = "an operator (==, !=, in, not in, contains, starts with, ends with)";
const VALUE: &str = "a quoted value";

/// Parses a Calico selector. The empty (or all-blank) selector is
/// [`Selector::All`], as in Calico.
pub fn parse(input: &str) -> Result<Selector, SelectorError> {
    let tokens = lex(input)?;
    let mut parser = Parser {
        input,
        tokens,
        next: 0,
        depth: 0,
    };
    if parser.peek().tok == Tok::End {
        return Ok(Selector::All);
    }
    let selector = parser.or()?;
    parser.expect_end("&&, || or the end of the selector")?;
    Ok(selector)
}

struct Parser<'a> {
    input: &'a str,
    tokens: Vec<Token>,
    next: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // The lexer always ends the list with `End`, and `bump` never moves
        // past it.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.next + ahead).min(self.tokens.len() - 1)].tok
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if token.tok != Tok::End {
            self.next += 1;
        }
        token
    }

    fn error_at(&self, token: &Token, expected: &'static str) -> SelectorError {
        SelectorError::Expected {
            input: self.input.to_owned(),
            position: token.start,
            expected,
            found: match &token.tok {
                Tok::End => Found::End,
                tok => Found::Text(tok.describe()),
            },
        }
    }

    fn expected(&self, expected: &'static str) -> SelectorError {
        self.error_at(self.peek(), expected)
    }

    fn expect(&mut self, tok: &Tok, expected: &'static str) -> Result<(), SelectorError> {
        if &self.peek().tok == tok {
            self.bump();
            Ok(())
        } else {
            Err(self.expected(expected))
        }
    }

    fn expect_end(&mut self, expected: &'static str) -> Result<(), SelectorError> {
        self.expect(&Tok::End, expected)
    }

    fn is_word(&self, ahead: usize, word: &str) -> bool {
        matches!(self.peek_at(ahead), Tok::Word(w) if w == word)
    }

    fn or(&mut self) -> Result<Selector, SelectorError> {
        let mut operands = vec![self.and()?];
        while self.peek().tok == Tok::Or {
            self.bump();
            operands.push(self.and()?);
        }
        Ok(chain(operands, Selector::Or))
    }

    fn and(&mut self) -> Result<Selector, SelectorError> {
        let mut operands = vec![self.unary()?];
        while self.peek().tok == Tok::And {
            self.bump();
            operands.push(self.unary()?);
        }
        Ok(chain(operands, Selector::And))
    }

    /// Enters one more level of nesting, opened by the next token, which
    /// it consumes.
    fn deeper(&mut self) -> Result<(), SelectorError> {
        let opener = self.bump();
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SelectorError::TooDeep {
                input: self.input.to_owned(),
                position: opener.start,
                max: MAX_DEPTH,
            });
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Selector, SelectorError> {
        match self.peek().tok.clone() {
            Tok::Not => {
                self.deeper()?;
                let operand = self.unary()?;
                self.depth -= 1;
                Ok(Selector::Not(Box::new(operand)))
            }
            Tok::LParen => {
                self.deeper()?;
                let inner = self.or()?;
                self.expect(&Tok::RParen, "&&, || or )")?;
                self.depth -= 1;
                Ok(inner)
            }
            Tok::Word(word) if self.peek_at(1) == &Tok::LParen => match word.as_str() {
                "all" | "global" => {
                    self.bump();
                    self.bump();
                    self.expect(&Tok::RParen, ")")?;
                    Ok(if word == "all" {
                        Selector::All
                    } else {
                        Selector::Global
                    })
                }
                "has" => {
                    self.bump();
                    self.bump();
                    let key = self.key("a label key")?;
                    self.expect(&Tok::RParen, ")")?;
                    Ok(Selector::Has(key))
                }
                _ => Err(self.error_at(&self.tokens[self.next + 1].clone(), OPERATOR)),
            },
            Tok::Word(_) => self.comparison(),
            _ => Err(self.expected(OPERAND)),
        }
    }

    fn key(&mut self, expected: &'static str) -> Result<String, SelectorError> {
        match self.peek().tok.clone() {
            Tok::Word(word) => {
                self.bump();
                Ok(word)
            }
            _ => Err(self.expected(expected)),
        }
    }

    fn value(&mut self, expected: &'static str) -> Result<String, SelectorError> {
        match self.peek().tok.clone() {
            Tok::Str(value) => {
                self.bump();
                Ok(value)
            }
            _ => Err(self.expected(expected)),
        }
    }

    fn comparison(&mut self) -> Result<Selector, SelectorError> {
        let key = self.key(OPERAND)?;
        let op = self.peek().tok.clone();
        let (make, words): (fn(String, String) -> Selector, usize) = match op {
            Tok::Eq => (Selector::Equals, 1),
            Tok::Ne => (Selector::NotEquals, 1),
            Tok::Word(w) if w == "contains" => (Selector::Contains, 1),
            Tok::Word(w) if w == "starts" || w == "ends" => {
                if !self.is_word(1, "with") {
                    self.bump();
                    return Err(self.expected("with"));
                }
                let make = if w == "starts" {
                    Selector::StartsWith
                } else {
                    Selector::EndsWith
                };
                (make, 2)
            }
            Tok::Word(w) if w == "in" => {
                self.bump();
                return Ok(Selector::In(key, self.set()?));
            }
            Tok::Word(w) if w == "not" => {
                self.bump();
                if !self.is_word(0, "in") {
                    return Err(self.expected("in"));
                }
                self.bump();
                return Ok(Selector::NotIn(key, self.set()?));
            }
            _ => return Err(self.expected(OPERATOR)),
        };
        for _ in 0..words {
            self.bump();
        }
        Ok(make(key, self.value(VALUE)?))
    }

    fn set(&mut self) -> Result<Vec<String>, SelectorError> {
        self.expect(&Tok::LBrace, "{")?;
        let mut values = Vec::new();
        if self.peek().tok == Tok::RBrace {
            self.bump();
            return Ok(values);
        }
        loop {
            values.push(self.value(if values.is_empty() {
                "a quoted value or }"
            } else {
                VALUE
            })?);
            match self.peek().tok {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RBrace => {
                    self.bump();
                    return Ok(values);
                }
                _ => return Err(self.expected(", or }")),
            }
        }
    }
}

/// One operand alone, else the chain of them.
fn chain(mut operands: Vec<Selector>, make: fn(Vec<Selector>) -> Selector) -> Selector {
    if operands.len() == 1 {
        operands.remove(0)
    } else {
        make(operands)
    }
}

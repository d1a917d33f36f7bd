//! REQUIREMENTS and RANK: the scheduler's expression languages (`CORE.md`
//! §6.1–6.4).
//!
//! Both share one lexer (§6.1). [`Requirements`] is a boolean filter whose
//! `!`, `&` and `|` are one flat, left-associative level, exactly as in
//! OpenNebula (`A | B & C` is `(A | B) & C`); [`Rank`] is arithmetic computed
//! in `f32` and truncated to an integer. Extensions accepted but never
//! written: `>=`, `<=` and `@>` (list contains); blanks may include newlines
//! so a REQUIREMENTS quoted over several template lines still reads. `^` is
//! rejected. String comparison is the shell-wildcard matcher at the end of
//! this file (`fnmatch(3)` with no flags).
//!
//! Variables are looked up through a caller-given function (the core walks
//! host template, host share, host fields; §6.4), so this file needs nothing
//! but `std`. Uses only `super` (a message helper).

use super::quoted_char;

/// A syntax error in a REQUIREMENTS or RANK expression, displayed as
/// `column {col}: {message}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column {col}: {message}")]
pub struct ExprError {
    /// Column of the offending token, from 1, in characters.
    pub col: usize,
    /// What was expected and what was found.
    pub message: String,
}

/// A parsed REQUIREMENTS expression.
#[derive(Clone, Debug)]
pub struct Requirements {
    /// `None` for an empty expression, which every host satisfies.
    condition: Option<Condition>,
}

/// A parsed RANK expression.
#[derive(Clone, Debug)]
pub struct Rank {
    /// `None` for an empty expression, which ranks every host 0.
    expression: Option<Arithmetic>,
}

impl Requirements {
    /// Parses a REQUIREMENTS expression; empty (or blank) text is valid.
    pub fn parse(text: &str) -> Result<Self, ExprError> {
        let mut parser = Parser::new(text)?;
        if parser.at_end() {
            return Ok(Requirements { condition: None });
        }
        let condition = parser.condition()?;
        parser.finish("expected '&', '|' or end of expression")?;
        Ok(Requirements {
            condition: Some(condition),
        })
    }

    /// True if the host whose variables `vars` returns satisfies the
    /// requirements.
    pub fn eval(&self, vars: &dyn Fn(&str) -> Option<String>) -> bool {
        self.condition
            .as_ref()
            .map_or(true, |condition| condition.eval(vars))
    }
}

impl Rank {
    /// Parses a RANK expression; empty (or blank) text is valid.
    pub fn parse(text: &str) -> Result<Self, ExprError> {
        let mut parser = Parser::new(text)?;
        if parser.at_end() {
            return Ok(Rank { expression: None });
        }
        let expression = parser.sum()?;
        parser.finish("expected '+', '-', '*', '/' or end of expression")?;
        Ok(Rank {
            expression: Some(expression),
        })
    }

    /// The host's score: the expression computed in `f32` (missing
    /// variables are 0) and truncated toward zero; NaN gives 0 and the
    /// infinities saturate.
    pub fn eval(&self, vars: &dyn Fn(&str) -> Option<String>) -> i64 {
        // `as` from f32 truncates toward zero, saturates and maps NaN to 0:
        // exactly the rule we want.
        self.expression
            .as_ref()
            .map_or(0, |expression| expression.eval(vars) as i64)
    }
}

// ---------------------------------------------------------------------------
// Lexer (§6.1)

#[derive(Clone)]
enum TokenKind {
    /// A name or a string literal: `[A-Za-z][A-Za-z0-9_]*` or `"..."`.
    Str(String),
    Int(i64),
    Float(f32),
    /// One of `! & | = > < ( ) * + / - @`.
    Op(char),
}

struct Token {
    kind: TokenKind,
    /// 1-based column of its first character.
    col: usize,
    /// The source text, for error messages.
    text: String,
}

fn lex(text: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let start = i;
        let kind = match c {
            ' ' | '\t' | '\n' | '\r' => {
                i += 1;
                continue;
            }
            '^' => {
                return Err(ExprError {
                    col: start + 1,
                    message: "expected a supported operator, found '^'".to_owned(),
                })
            }
            '!' | '&' | '|' | '=' | '>' | '<' | '(' | ')' | '*' | '+' | '/' | '@' => {
                i += 1;
                TokenKind::Op(c)
            }
            // The minus belongs to the number when glued to it: `FREECPU-100`
            // is `FREECPU` `-100`, a syntax error, as in OpenNebula.
            '-' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                i += 1;
                TokenKind::Op('-')
            }
            '-' | '0'..='9' => {
                i += 1;
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                let is_float = chars.get(i) == Some(&'.')
                    && chars.get(i + 1).is_some_and(char::is_ascii_digit);
                if is_float {
                    i += 1;
                    while chars.get(i).is_some_and(char::is_ascii_digit) {
                        i += 1;
                    }
                }
                let literal: String = chars[start..i].iter().collect();
                let out_of_range = || ExprError {
                    col: start + 1,
                    message: format!("expected a number that fits, found '{literal}'"),
                };
                if is_float {
                    TokenKind::Float(literal.parse().map_err(|_| out_of_range())?)
                } else {
                    TokenKind::Int(literal.parse().map_err(|_| out_of_range())?)
                }
            }
            'A'..='Z' | 'a'..='z' => {
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    i += 1;
                }
                TokenKind::Str(chars[start..i].iter().collect())
            }
            '"' => {
                let Some(length) = chars[i + 1..].iter().position(|&c| c == '"') else {
                    return Err(ExprError {
                        col: start + 1,
                        message: "expected a closing '\"' for the string that starts here, \
                                  found end of expression"
                            .to_owned(),
                    });
                };
                i += length + 2;
                TokenKind::Str(chars[start + 1..i - 1].iter().collect())
            }
            other => {
                return Err(ExprError {
                    col: start + 1,
                    message: format!(
                        "expected a name, a number, a string or an operator, found {}",
                        quoted_char(other)
                    ),
                })
            }
        };
        tokens.push(Token {
            kind,
            col: start + 1,
            text: chars[start..i].iter().collect(),
        });
    }
    Ok(tokens)
}

// ---------------------------------------------------------------------------
// Syntax trees

/// A REQUIREMENTS node.
#[derive(Clone, Debug)]
enum Condition {
    Compare { var: String, test: Test },
    Not(Box<Condition>),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
}

/// What a host variable is compared with.
#[derive(Clone, Debug)]
enum Test {
    /// `VAR op INTEGER`: the value's leading integer (missing → 0).
    Int(Order, i64),
    /// `VAR op FLOAT`: the value read as a float (missing → 0.0, 3.x rule).
    Float(Order, f32),
    /// `VAR = "pattern"` (or `!=` when `negated`).
    Matches { pattern: Pattern, negated: bool },
    /// `VAR @> item`: the value is a comma-separated list holding `item`.
    Contains(Literal),
}

#[derive(Clone, Copy, Debug)]
enum Order {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

/// The right-hand side as written.
#[derive(Clone, Debug)]
enum Literal {
    Int(i64),
    Float(f32),
    Str(String),
}

/// A RANK node.
#[derive(Clone, Debug)]
enum Arithmetic {
    Var(String),
    Number(f32),
    Neg(Box<Arithmetic>),
    Binary(Box<Arithmetic>, char, Box<Arithmetic>),
}

// ---------------------------------------------------------------------------
// Parser (§6.2, §6.3)

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Column just past the text, for "found end of expression".
    end_col: usize,
}

impl Parser {
    fn new(text: &str) -> Result<Self, ExprError> {
        Ok(Parser {
            tokens: lex(text)?,
            pos: 0,
            end_col: text.chars().count() + 1,
        })
    }

    fn at_end(&self) -> bool {
        self.pos == self.tokens.len()
    }

    fn peek(&self) -> Option<&TokenKind> {
        self.tokens.get(self.pos).map(|token| &token.kind)
    }

    fn peek_op(&self) -> Option<char> {
        match self.peek() {
            Some(TokenKind::Op(op)) => Some(*op),
            _ => None,
        }
    }

    fn eat_op(&mut self, op: char) -> bool {
        let found = self.peek_op() == Some(op);
        if found {
            self.pos += 1;
        }
        found
    }

    fn error(&self, expected: &str) -> ExprError {
        match self.tokens.get(self.pos) {
            Some(token) => ExprError {
                col: token.col,
                message: format!("{expected}, found '{}'", token.text),
            },
            None => ExprError {
                col: self.end_col,
                message: format!("{expected}, found end of expression"),
            },
        }
    }

    fn expect_op(&mut self, op: char, expected: &str) -> Result<(), ExprError> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    fn finish(&self, expected: &str) -> Result<(), ExprError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    /// `condition = unary { ("&" | "|") unary }`, folded to the left: `!`,
    /// `&` and `|` share one precedence level.
    fn condition(&mut self) -> Result<Condition, ExprError> {
        let mut left = self.unary()?;
        loop {
            if self.eat_op('&') {
                left = Condition::And(Box::new(left), Box::new(self.unary()?));
            } else if self.eat_op('|') {
                left = Condition::Or(Box::new(left), Box::new(self.unary()?));
            } else {
                return Ok(left);
            }
        }
    }

    /// `unary = "!" unary | "(" condition ")" | comparison`. `!` takes only
    /// what follows up to the next `&`/`|`: `!A & B` is `(!A) & B`.
    fn unary(&mut self) -> Result<Condition, ExprError> {
        if self.eat_op('!') {
            return Ok(Condition::Not(Box::new(self.unary()?)));
        }
        if self.eat_op('(') {
            let inner = self.condition()?;
            self.expect_op(')', "expected ')', '&' or '|'")?;
            return Ok(inner);
        }
        self.comparison()
    }

    /// `comparison = var op literal`.
    fn comparison(&mut self) -> Result<Condition, ExprError> {
        let Some(TokenKind::Str(var)) = self.peek().cloned() else {
            return Err(self.error("expected a variable name, '!' or '('"));
        };
        self.pos += 1;
        let op = self.comparison_op(&var)?;
        let literal = match self.peek().cloned() {
            Some(TokenKind::Int(n)) => Literal::Int(n),
            Some(TokenKind::Float(x)) => Literal::Float(x),
            Some(TokenKind::Str(s)) => Literal::Str(s),
            _ => {
                return Err(self.error(&format!(
                    "expected a number or a string to compare '{var}' with"
                )))
            }
        };
        let test = match (op, literal) {
            (None, literal) => Test::Contains(literal),
            (Some(order), Literal::Int(n)) => Test::Int(order, n),
            (Some(order), Literal::Float(x)) => Test::Float(order, x),
            (Some(Order::Eq), Literal::Str(pattern)) => Test::Matches {
                pattern: Pattern::compile(&pattern),
                negated: false,
            },
            (Some(Order::Ne), Literal::Str(pattern)) => Test::Matches {
                pattern: Pattern::compile(&pattern),
                negated: true,
            },
            (Some(_), Literal::Str(_)) => {
                return Err(
                    self.error("expected a number ('>', '<', '>=' and '<=' compare numbers)")
                )
            }
        };
        self.pos += 1;
        Ok(Condition::Compare { var, test })
    }

    /// `=`, `!=`, `>`, `<`, `>=`, `<=` as an [`Order`], or `None` for `@>`.
    /// Two-character operators are two tokens, blanks allowed between, as
    /// OpenNebula lexes `!=`.
    fn comparison_op(&mut self, var: &str) -> Result<Option<Order>, ExprError> {
        let expected = format!("expected '=', '!=', '>', '<', '>=', '<=' or '@>' after '{var}'");
        let Some(first) = self.peek_op() else {
            return Err(self.error(&expected));
        };
        self.pos += 1;
        let order = match first {
            '=' => Order::Eq,
            '!' => {
                self.expect_op('=', "expected '=' after '!'")?;
                Order::Ne
            }
            '>' if self.eat_op('=') => Order::Ge,
            '>' => Order::Gt,
            '<' if self.eat_op('=') => Order::Le,
            '<' => Order::Lt,
            '@' => {
                self.expect_op('>', "expected '>' after '@'")?;
                return Ok(None);
            }
            _ => {
                self.pos -= 1;
                return Err(self.error(&expected));
            }
        };
        Ok(Some(order))
    }

    /// `sum = product { ("+" | "-") product }`, left-associative.
    fn sum(&mut self) -> Result<Arithmetic, ExprError> {
        let mut left = self.product()?;
        while let Some(op @ ('+' | '-')) = self.peek_op() {
            self.pos += 1;
            left = Arithmetic::Binary(Box::new(left), op, Box::new(self.product()?));
        }
        Ok(left)
    }

    /// `product = factor { ("*" | "/") factor }`, left-associative.
    fn product(&mut self) -> Result<Arithmetic, ExprError> {
        let mut left = self.factor()?;
        while let Some(op @ ('*' | '/')) = self.peek_op() {
            self.pos += 1;
            left = Arithmetic::Binary(Box::new(left), op, Box::new(self.factor()?));
        }
        Ok(left)
    }

    /// `factor = var | INTEGER | FLOAT | "-" factor | "(" sum ")"`.
    fn factor(&mut self) -> Result<Arithmetic, ExprError> {
        let factor = match self.peek().cloned() {
            Some(TokenKind::Str(var)) => Arithmetic::Var(var),
            // Literals are read in f32, like every RANK value.
            Some(TokenKind::Int(n)) => Arithmetic::Number(n as f32),
            Some(TokenKind::Float(x)) => Arithmetic::Number(x),
            Some(TokenKind::Op('-')) => {
                self.pos += 1;
                return Ok(Arithmetic::Neg(Box::new(self.factor()?)));
            }
            Some(TokenKind::Op('(')) => {
                self.pos += 1;
                let inner = self.sum()?;
                self.expect_op(')', "expected ')', '+', '-', '*' or '/'")?;
                return Ok(inner);
            }
            _ => return Err(self.error("expected a variable, a number, '-' or '('")),
        };
        self.pos += 1;
        Ok(factor)
    }
}

// ---------------------------------------------------------------------------
// Evaluation

impl Condition {
    fn eval(&self, vars: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Condition::Compare { var, test } => test.eval(vars(var).as_deref()),
            Condition::Not(inner) => !inner.eval(vars),
            Condition::And(left, right) => left.eval(vars) && right.eval(vars),
            Condition::Or(left, right) => left.eval(vars) || right.eval(vars),
        }
    }
}

impl Test {
    fn eval(&self, value: Option<&str>) -> bool {
        match self {
            Test::Int(order, n) => order.holds(leading_int(value.unwrap_or("")), *n),
            Test::Float(order, x) => order.holds(leading_float(value.unwrap_or("")), *x),
            Test::Matches { pattern, negated } => {
                // OpenNebula reads a missing variable as "" and makes both
                // `=` and `!=` false for it, and for the pattern "".
                match value {
                    Some(value) if !value.is_empty() && !pattern.is_empty() => {
                        pattern.matches(value) != *negated
                    }
                    _ => false,
                }
            }
            Test::Contains(item) => {
                let mut list = value
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|element| !element.is_empty());
                match item {
                    Literal::Int(n) => list.any(|element| leading_int(element) == *n),
                    Literal::Float(x) => list.any(|element| leading_float(element) == *x),
                    Literal::Str(s) => list.any(|element| element == s.as_str()),
                }
            }
        }
    }
}

impl Order {
    fn holds<T: PartialOrd>(self, host: T, wanted: T) -> bool {
        match self {
            Order::Eq => host == wanted,
            Order::Ne => host != wanted,
            Order::Gt => host > wanted,
            Order::Lt => host < wanted,
            Order::Ge => host >= wanted,
            Order::Le => host <= wanted,
        }
    }
}

impl Arithmetic {
    fn eval(&self, vars: &dyn Fn(&str) -> Option<String>) -> f32 {
        match self {
            Arithmetic::Var(var) => vars(var).map_or(0.0, |value| leading_float(&value)),
            Arithmetic::Number(x) => *x,
            Arithmetic::Neg(inner) => -inner.eval(vars),
            Arithmetic::Binary(left, op, right) => {
                let (left, right) = (left.eval(vars), right.eval(vars));
                match op {
                    '+' => left + right,
                    '-' => left - right,
                    '*' => left * right,
                    // Division by zero is ±inf or NaN, not an error (§6.3).
                    _ => left / right,
                }
            }
        }
    }
}

/// The leading integer of `text`, as `atoi` reads it: blanks, a sign, digits;
/// `"96.7"` → 96, no digits → 0, saturating on overflow.
fn leading_int(text: &str) -> i64 {
    let text = text.trim_start();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let mut value: i64 = 0;
    for digit in digits.chars().map_while(|c| c.to_digit(10)) {
        let digit = i64::from(digit);
        value = value
            .saturating_mul(10)
            .saturating_add(if negative { -digit } else { digit });
    }
    value
}

/// The leading decimal number of `text`, as `strtof` reads it (sign, digits,
/// fraction, exponent); no number → 0.0.
fn leading_float(text: &str) -> f32 {
    let text = text.trim_start();
    let bytes = text.as_bytes();
    let digits_from = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut end = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let integer_end = digits_from(end);
    let mut has_digits = integer_end > end;
    end = integer_end;
    if bytes.get(end) == Some(&b'.') {
        let fraction_end = digits_from(end + 1);
        has_digits |= fraction_end > end + 1;
        end = fraction_end;
    }
    if !has_digits {
        return 0.0;
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        let exponent_end = digits_from(end + 1 + sign);
        if exponent_end > end + 1 + sign {
            end = exponent_end;
        }
    }
    text[..end].parse().unwrap_or(0.0)
}

// ---------------------------------------------------------------------------
// Shell wildcards, as `fnmatch(pattern, value, 0)`: `*` and `?` match any
// character including `/` and a leading `.`; `[...]` with `!` or `^`
// negation, ranges and `[:class:]` names; `\` escapes the next character.
// Written here rather than pulled in as a crate because it is this small.

/// A compiled wildcard pattern.
#[derive(Clone, Debug)]
struct Pattern {
    items: Vec<PatternItem>,
}

#[derive(Clone, Debug)]
enum PatternItem {
    Literal(char),
    AnyChar,
    AnySequence,
    Class {
        negated: bool,
        members: Vec<ClassMember>,
    },
}

#[derive(Clone, Debug)]
enum ClassMember {
    Char(char),
    Range(char, char),
    Named(CharTest),
}

/// The test of a `[:name:]` class.
type CharTest = fn(&char) -> bool;

impl Pattern {
    fn compile(pattern: &str) -> Pattern {
        let chars: Vec<char> = pattern.chars().collect();
        let mut items = Vec::new();
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            i += 1;
            let item = match c {
                '*' => PatternItem::AnySequence,
                '?' => PatternItem::AnyChar,
                '\\' => match chars.get(i) {
                    Some(&escaped) => {
                        i += 1;
                        PatternItem::Literal(escaped)
                    }
                    // glibc: a pattern ending in a lone backslash matches
                    // nothing; an empty class is that.
                    None => PatternItem::Class {
                        negated: false,
                        members: Vec::new(),
                    },
                },
                '[' => match compile_class(&chars, i) {
                    Some((class, next)) => {
                        i = next;
                        class
                    }
                    // An unclosed `[` is an ordinary character.
                    None => PatternItem::Literal('['),
                },
                _ => PatternItem::Literal(c),
            };
            items.push(item);
        }
        Pattern { items }
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Matches the whole of `text`: greedy, backtracking only to the last
    /// `*` (every other item takes exactly one character).
    fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (mut p, mut t) = (0, 0);
        let mut last_star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.items.get(p) {
                Some(PatternItem::AnySequence) => {
                    last_star = Some((p, t));
                    p += 1;
                    continue;
                }
                Some(item) if item.matches_char(text[t]) => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
            match last_star {
                Some((star, consumed)) => {
                    // Let that `*` take one more character and retry.
                    last_star = Some((star, consumed + 1));
                    p = star + 1;
                    t = consumed + 1;
                }
                None => return false,
            }
        }
        self.items[p..]
            .iter()
            .all(|item| matches!(item, PatternItem::AnySequence))
    }
}

impl PatternItem {
    fn matches_char(&self, c: char) -> bool {
        match self {
            PatternItem::Literal(literal) => *literal == c,
            PatternItem::AnyChar => true,
            PatternItem::AnySequence => false,
            PatternItem::Class { negated, members } => {
                members.iter().any(|member| member.contains(c)) != *negated
            }
        }
    }
}

impl ClassMember {
    fn contains(&self, c: char) -> bool {
        match self {
            ClassMember::Char(member) => *member == c,
            ClassMember::Range(low, high) => (*low..=*high).contains(&c),
            ClassMember::Named(test) => test(&c),
        }
    }
}

/// Compiles the class whose `[` is just before `chars[start]`; returns it
/// with the index after its `]`, or `None` if it is never closed.
fn compile_class(chars: &[char], start: usize) -> Option<(PatternItem, usize)> {
    let mut i = start;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut members = Vec::new();
    // A `]` right after the opening (and negation) is a member.
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((PatternItem::Class { negated, members }, i + 1));
        }
        first = false;
        if c == '[' && chars.get(i + 1) == Some(&':') {
            if let Some((test, next)) = named_class(chars, i + 2) {
                members.push(ClassMember::Named(test));
                i = next;
                continue;
            }
        }
        let (low, next) = class_char(chars, i)?;
        i = next;
        let is_range = chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&c| c != ']');
        if is_range {
            let (high, next) = class_char(chars, i + 1)?;
            i = next;
            members.push(ClassMember::Range(low, high));
        } else {
            members.push(ClassMember::Char(low));
        }
    }
}

/// One possibly escaped character of a class, and the index after it.
fn class_char(chars: &[char], i: usize) -> Option<(char, usize)> {
    match *chars.get(i)? {
        '\\' => Some((*chars.get(i + 1)?, i + 2)),
        c => Some((c, i + 1)),
    }
}

/// `[:name:]` starting at its name (`chars[start]`): the test and the index
/// after `:]`. An unknown name matches nothing, as glibc's fnmatch fails it.
fn named_class(chars: &[char], start: usize) -> Option<(CharTest, usize)> {
    let length = chars[start..]
        .windows(2)
        .position(|pair| pair == [':', ']'])?;
    let name: String = chars[start..start + length].iter().collect();
    let test: CharTest = match name.as_str() {
        "alnum" => char::is_ascii_alphanumeric,
        "alpha" => char::is_ascii_alphabetic,
        "blank" => |c| matches!(c, ' ' | '\t'),
        "cntrl" => char::is_ascii_control,
        "digit" => char::is_ascii_digit,
        "graph" => char::is_ascii_graphic,
        "lower" => char::is_ascii_lowercase,
        "print" => |c| c.is_ascii_graphic() || *c == ' ',
        "punct" => char::is_ascii_punctuation,
        "space" => |c| c.is_ascii_whitespace() || *c == '\x0b',
        "upper" => char::is_ascii_uppercase,
        "xdigit" => char::is_ascii_hexdigit,
        _ => |_| false,
    };
    Some((test, start + length + 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Variables from `NAME=value` pairs.
    fn host<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn req(text: &str, pairs: &[(&str, &str)]) -> bool {
        match Requirements::parse(text) {
            Ok(requirements) => requirements.eval(&host(pairs)),
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    fn rank(text: &str, pairs: &[(&str, &str)]) -> i64 {
        match Rank::parse(text) {
            Ok(rank) => rank.eval(&host(pairs)),
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    fn req_error(text: &str) -> String {
        match Requirements::parse(text) {
            Ok(r) => panic!("{text:?} parsed as {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn rank_error(text: &str) -> String {
        match Rank::parse(text) {
            Ok(r) => panic!("{text:?} parsed as {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn and_or_not_are_one_left_associative_level() {
        let x1_y0 = [("X", "1"), ("Y", "0")];
        // The CORE.md example: (X = 1 | X = 2) & Y = 3.
        assert!(!req("X = 1 | X = 2 & Y = 3", &x1_y0));
        assert!(req("X = 1 | (X = 2 & Y = 3)", &x1_y0));
        assert!(req("Y = 3 & X = 2 | X = 1", &x1_y0));
        // `!A & B` is `(!A) & B`; `!A | B` is `(!A) | B`.
        assert!(!req("! X = 1 & Y = 0", &x1_y0));
        assert!(req("! X = 2 & Y = 0", &x1_y0));
        assert!(req("! X = 1 | Y = 0", &x1_y0));
        assert!(req("!(X = 1 & Y = 1)", &x1_y0));
        assert!(req("!!X = 1", &x1_y0));
        assert!(!req("X = 1 & ! Y = 0", &x1_y0));
    }

    #[test]
    fn truth_tables_of_and_or_not() {
        for (a, b) in [(false, false), (false, true), (true, false), (true, true)] {
            let vars = [
                ("A", if a { "1" } else { "0" }),
                ("B", if b { "1" } else { "0" }),
            ];
            assert_eq!(req("A = 1 & B = 1", &vars), a && b);
            assert_eq!(req("A = 1 | B = 1", &vars), a || b);
            assert_eq!(req("!A = 1", &vars), !a);
            assert_eq!(req("((A = 1))", &vars), a);
        }
    }

    #[test]
    fn integer_comparisons_read_the_leading_integer() {
        let vars = [
            ("FREECPU", "96.7"),
            ("NEG", "-5"),
            ("TEXT", "abc"),
            ("SP", "  42x"),
        ];
        assert!(req("FREECPU = 96", &vars));
        assert!(req("FREECPU > 95", &vars));
        assert!(!req("FREECPU > 96", &vars));
        assert!(req("FREECPU < 97", &vars));
        assert!(req("FREECPU != 97", &vars));
        assert!(req("NEG = -5", &vars));
        assert!(req("NEG < -4", &vars));
        assert!(req("TEXT = 0", &vars));
        assert!(req("SP = 42", &vars));
        // Missing reads as 0 (3.x).
        assert!(req("MISSING = 0", &vars));
        assert!(req("MISSING < 1", &vars));
        assert!(!req("MISSING != 0", &vars));
    }

    #[test]
    fn float_comparisons() {
        let vars = [("CPU", "0.5"), ("BIG", "1e3"), ("INT", "7")];
        assert!(req("CPU = 0.5", &vars));
        assert!(req("CPU > 0.4", &vars));
        assert!(req("CPU < 0.6", &vars));
        assert!(!req("CPU != 0.5", &vars));
        assert!(req("BIG > 999.5", &vars));
        assert!(req("INT = 7.0", &vars));
        // Missing reads as 0.0 (3.x rule chosen by CORE.md).
        assert!(req("MISSING = 0.0", &vars));
        assert!(req("MISSING < 0.1", &vars));
        assert!(!req("MISSING != 0.0", &vars));
    }

    #[test]
    fn greater_or_equal_and_less_or_equal() {
        let vars = [("N", "10"), ("F", "2.5")];
        assert!(req("N >= 10", &vars));
        assert!(req("N > = 9", &vars));
        assert!(!req("N >= 11", &vars));
        assert!(req("N <= 10", &vars));
        assert!(!req("N <= 9", &vars));
        assert!(req("F >= 2.5", &vars));
        assert!(req("F <= 2.5 & F >= 2.5", &vars));
        assert!(req("MISSING <= 0", &vars));
    }

    #[test]
    fn string_comparisons_are_wildcard_matches() {
        let vars = [
            ("HOSTNAME", "node07"),
            ("FQDN", "web.dmz.example.org"),
            ("HYPERVISOR", "kvm"),
        ];
        assert!(req("HOSTNAME = \"node0?\"", &vars));
        assert!(!req("HOSTNAME != \"node0?\"", &vars));
        assert!(!req("HOSTNAME = \"node?\"", &vars));
        assert!(req("HOSTNAME != \"node1*\"", &vars));
        assert!(req("FQDN = \"*.dmz.example.org\"", &vars));
        assert!(!req("! (FQDN = \"*.dmz.example.org\")", &vars));
        assert!(req("HYPERVISOR = kvm", &vars));
        assert!(req("HYPERVISOR != xen", &vars));
        assert!(!req("HYPERVISOR = KVM", &vars), "case-sensitive");
        assert!(req("ARCH = \"x86_64\" | HYPERVISOR = \"k[a-z]m\"", &vars));
        assert!(
            req("\"HYPERVISOR\" = \"kvm\"", &vars),
            "a quoted name is a name"
        );
    }

    #[test]
    fn missing_variable_or_empty_pattern_makes_string_tests_false() {
        let vars = [("EMPTY", ""), ("A", "x")];
        for text in [
            "MISSING = \"*\"",
            "MISSING != \"*\"",
            "MISSING = abc",
            "MISSING != abc",
            "EMPTY = \"*\"",
            "EMPTY != \"x\"",
            "A = \"\"",
            "A != \"\"",
        ] {
            assert!(!req(text, &vars), "{text}");
        }
        assert!(req("!MISSING = abc", &vars));
    }

    #[test]
    fn list_contains() {
        let vars = [("PCI", "10de:1db4, 8086:10fb,0300"), ("NUMS", "1,2.5,30")];
        assert!(req("PCI @> \"8086:10fb\"", &vars));
        assert!(req("PCI @> \"10de:1db4\"", &vars));
        assert!(!req("PCI @> \"8086:*\"", &vars), "exact, not a wildcard");
        assert!(req("NUMS @> 30", &vars));
        assert!(req("NUMS @ > 1", &vars));
        assert!(!req("NUMS @> 3", &vars));
        assert!(req("NUMS @> 2.5", &vars));
        assert!(!req("MISSING @> 0", &vars));
        assert!(!req("MISSING @> x", &vars));
    }

    #[test]
    fn empty_requirements_is_true_and_empty_rank_is_zero() {
        assert!(req("", &[]));
        assert!(req("  \t", &[]));
        assert_eq!(rank("", &[("X", "5")]), 0);
        assert_eq!(rank(" ", &[]), 0);
    }

    #[test]
    fn requirements_syntax_errors() {
        let cases = [
            ("HOSTNAME = node-01", "column 16: expected '&', '|' or end of expression, found '-01'"),
            ("FREECPU-100 > 0", "column 8: expected '=', '!=', '>', '<', '>=', '<=' or '@>' after 'FREECPU', found '-100'"),
            ("FREECPU ^ 2 > 0", "column 9: expected a supported operator, found '^'"),
            ("HOSTNAME = node0?", "column 17: expected a name, a number, a string or an operator, found '?'"),
            ("X > \"a\"", "column 5: expected a number ('>', '<', '>=' and '<=' compare numbers), found '\"a\"'"),
            ("X = 1 &", "column 8: expected a variable name, '!' or '(', found end of expression"),
            ("(X = 1", "column 7: expected ')', '&' or '|', found end of expression"),
            ("X = 1)", "column 6: expected '&', '|' or end of expression, found ')'"),
            ("X =", "column 4: expected a number or a string to compare 'X' with, found end of expression"),
            ("5 = X", "column 1: expected a variable name, '!' or '(', found '5'"),
            ("X ! 5", "column 5: expected '=' after '!', found '5'"),
            ("X @ 5", "column 5: expected '>' after '@', found '5'"),
            ("X = \"open", "column 5: expected a closing '\"' for the string that starts here, found end of expression"),
            ("X = 1.", "column 6: expected a name, a number, a string or an operator, found '.'"),
            ("X = .5", "column 5: expected a name, a number, a string or an operator, found '.'"),
            ("X = 99999999999999999999", "column 5: expected a number that fits, found '99999999999999999999'"),
            ("X & Y", "column 3: expected '=', '!=', '>', '<', '>=', '<=' or '@>' after 'X', found '&'"),
        ];
        for (text, expected) in cases {
            assert_eq!(req_error(text), expected, "for {text:?}");
        }
        let e = Requirements::parse("A = 1 |").expect_err("dangling |");
        assert_eq!(e.col, 8);
    }

    #[test]
    fn rank_arithmetic_and_precedence() {
        let vars = [("FREECPU", "250.5"), ("RUNNING_VMS", "3"), ("TWO", "2")];
        assert_eq!(rank("FREECPU", &vars), 250);
        assert_eq!(rank("- RUNNING_VMS", &vars), -3);
        assert_eq!(rank("1 + 2 * 3", &vars), 7);
        assert_eq!(rank("(1 + 2) * 3", &vars), 9);
        assert_eq!(rank("10 - 4 - 3", &vars), 3, "left-associative");
        assert_eq!(rank("24 / 4 / 2", &vars), 3, "left-associative");
        assert_eq!(rank("-TWO * 3 + 1", &vars), -5);
        assert_eq!(rank("- - 4", &vars), 4);
        assert_eq!(rank("2*-3", &vars), -6, "glued minus is a negative literal");
        assert_eq!(rank("FREECPU - 100", &vars), 150);
        assert_eq!(rank("FREECPU * 2", &vars), 501);
        assert_eq!(rank("\"TWO\" * 1.25", &vars), 2);
        assert_eq!(rank("MISSING + 7", &vars), 7);
    }

    #[test]
    fn rank_truncates_toward_zero_and_saturates() {
        let vars = [("ZERO", "0"), ("X", "7")];
        assert_eq!(rank("7 / 2", &vars), 3);
        assert_eq!(rank("-7 / 2", &vars), -3);
        assert_eq!(rank("0.99", &vars), 0);
        assert_eq!(rank("-0.99", &vars), 0);
        assert_eq!(rank("X / ZERO", &vars), i64::MAX);
        assert_eq!(rank("-X / ZERO", &vars), i64::MIN);
        assert_eq!(rank("ZERO / ZERO", &vars), 0, "NaN");
        assert_eq!(rank("MISSING / 0", &vars), 0, "0/0 is NaN");
    }

    #[test]
    fn rank_is_computed_in_single_precision() {
        // 16777217 is not an f32: it rounds to 16777216.
        assert_eq!(rank("16777217", &[]), 16_777_216);
        assert_eq!(rank("X + 1", &[("X", "16777216")]), 16_777_216);
    }

    #[test]
    fn rank_syntax_errors() {
        let cases = [
            (
                "FREECPU-100",
                "column 8: expected '+', '-', '*', '/' or end of expression, found '-100'",
            ),
            (
                "FREECPU ^ 2",
                "column 9: expected a supported operator, found '^'",
            ),
            (
                "1 +",
                "column 4: expected a variable, a number, '-' or '(', found end of expression",
            ),
            (
                "(1 + 2",
                "column 7: expected ')', '+', '-', '*' or '/', found end of expression",
            ),
            (
                "1 2",
                "column 3: expected '+', '-', '*', '/' or end of expression, found '2'",
            ),
            (
                "A = 1",
                "column 3: expected '+', '-', '*', '/' or end of expression, found '='",
            ),
            (
                "* 2",
                "column 1: expected a variable, a number, '-' or '(', found '*'",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(rank_error(text), expected, "for {text:?}");
        }
    }

    #[test]
    fn leading_number_readers() {
        assert_eq!(leading_int("96.7"), 96);
        assert_eq!(leading_int(" -12abc"), -12);
        assert_eq!(leading_int("+3"), 3);
        assert_eq!(leading_int("x1"), 0);
        assert_eq!(leading_int("-"), 0);
        assert_eq!(leading_int("99999999999999999999999"), i64::MAX);
        assert_eq!(leading_float("12.5%"), 12.5);
        assert_eq!(leading_float(" -.5"), -0.5);
        assert_eq!(leading_float("5."), 5.0);
        assert_eq!(leading_float("1e3x"), 1000.0);
        assert_eq!(leading_float("2e"), 2.0);
        assert_eq!(leading_float("2e+"), 2.0);
        assert_eq!(leading_float("."), 0.0);
        assert_eq!(leading_float("abc"), 0.0);
    }

    proptest! {
        #[test]
        fn any_expression_parses_or_fails_cleanly(text in "[ !&|=<>()*+/@^.\"A-C0-9_-]{0,30}") {
            let vars = host(&[("A", "1"), ("B", "x"), ("C", "2.5")]);
            if let Ok(requirements) = Requirements::parse(&text) {
                requirements.eval(&vars);
            }
            if let Ok(rank) = Rank::parse(&text) {
                rank.eval(&vars);
            }
        }

        #[test]
        fn an_escaped_pattern_matches_exactly_its_text(
            pattern in "(\\PC|[*?\\[\\]!^-]){0,12}",
            text in "(\\PC|[*?\\[\\]!^-]){0,12}",
        ) {
            let escaped: String = pattern.chars().flat_map(|c| ['\\', c]).collect();
            prop_assert!(glob(&escaped, &pattern));
            prop_assert_eq!(glob(&escaped, &text), text == pattern);
        }

        #[test]
        fn a_star_matches_any_middle(prefix in "[a-c]{0,4}", middle in "\\PC{0,8}", suffix in "[a-c]{0,4}") {
            let pattern = format!("{prefix}*{suffix}");
            let text = format!("{prefix}{middle}{suffix}");
            prop_assert!(glob(&pattern, &text));
        }
    }

    fn glob(pattern: &str, text: &str) -> bool {
        Pattern::compile(pattern).matches(text)
    }

    #[test]
    fn wildcards_star_and_question_mark() {
        assert!(glob("node0?", "node01"));
        assert!(!glob("node0?", "node0"));
        assert!(!glob("node0?", "node012"));
        assert!(glob("*.dmz.example.org", "a.b.dmz.example.org"));
        assert!(!glob("*.dmz.example.org", "dmz.example.org"));
        assert!(glob("*", ""));
        assert!(glob("*", "/leading/slash"));
        assert!(glob("*", ".hidden"));
        assert!(glob("a*/b", "a/x/y/b"), "* matches /");
        assert!(glob("?bc", ".bc"), "? matches a leading dot");
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("a*b*c", "aXbYbZ"));
        assert!(glob("**x", "abx"));
        assert!(glob("x**", "x"));
        assert!(!glob("abc", "ABC"));
        assert!(glob("é?", "éü"), "characters, not bytes");
    }

    #[test]
    fn wildcard_classes() {
        assert!(glob("node[0-3]", "node2"));
        assert!(!glob("node[0-3]", "node4"));
        assert!(glob("node[!0-3]", "node4"));
        assert!(glob("node[^0-3]", "node4"));
        assert!(!glob("node[^0-3]", "node1"));
        assert!(glob("[abc]x", "bx"));
        assert!(glob("[]a]", "]"), "] first is a member");
        assert!(glob("[!]a]", "b"));
        assert!(!glob("[!]a]", "]"));
        assert!(glob("[a-]", "-"), "- last is a member");
        assert!(glob("[-a]", "-"), "- first is a member");
        assert!(!glob("[z-a]", "m"), "a reversed range is empty");
        assert!(glob("[[:digit:]][[:upper:]]", "7Q"));
        assert!(!glob("[[:digit:]]", "x"));
        assert!(glob("[[:alpha:]_]*", "_x"));
        assert!(!glob("[[:bogus:]]", "b"));
        assert!(glob("a[", "a["), "an unclosed [ is literal");
        assert!(glob("[*?]", "?"));
        assert!(!glob("[*?]", "x"));
    }

    #[test]
    fn wildcard_escapes() {
        assert!(glob("\\*", "*"));
        assert!(!glob("\\*", "x"));
        assert!(glob("a\\?", "a?"));
        assert!(!glob("a\\?", "ab"));
        assert!(glob("\\a", "a"));
        assert!(glob("[\\]]", "]"));
        assert!(glob("[a\\-z]", "-"));
        assert!(!glob("[a\\-z]", "m"));
        assert!(!glob("a\\", "a\\"), "a trailing backslash matches nothing");
        assert!(!glob("a\\", "a"));
    }

    #[test]
    fn wildcard_edge_cases() {
        // Lone star backtracking across many candidates stays correct.
        assert!(glob("*a*a*a*b", "aaaaaaaaaaaaaaab"));
        assert!(!glob("*a*a*a*b", "aaaaaaaaaaaaaaaa"));
        assert!(glob("?*?", "ab"));
        assert!(!glob("?*?", "a"));
    }
}

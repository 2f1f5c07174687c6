//! `--where` predicates over the index tables: a small SQL-like language parsed by hand
//! (no query engine to compile) and evaluated over the in-memory rows.
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | "(" expr ")" | compare
//! compare := COLUMN op literal | COLUMN "in" "(" literal ("," literal)* ")"
//!          | COLUMN "is" ["not"] "null"
//! op      := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! literal := number | 'text' | "text" | true | false
//! ```
//! Keywords are case-insensitive. Dates compare as `YYYY-MM-DD` text, which orders like
//! dates (`date >= '2024-01-01'`). A comparison with a null value (e.g. `rel_volume` of a
//! day without history) is false. Unknown columns and type mismatches are refused with
//! the list of columns.

use super::index::Index;
use crate::error::{Error, Result};

/// Which table a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Table {
    Days,
    Resets,
}

/// A cell value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Num(f64),
    Text(String),
    Bool(bool),
    Null,
}

pub const DAY_COLUMNS: &[&str] = &[
    "symbol",
    "date",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "dollar_volume",
    "bars",
    "range",
    "change",
    "gap",
    "max_runup",
    "max_drawdown",
    "max_move",
    "trend",
    "halts",
    "squeezes",
    "rel_volume",
    "volume_history",
    "momentum",
    "quality",
    "category",
    "resets",
    "path",
];

/// Reset columns, plus `category` and `quality` of the reset's day.
pub const RESET_COLUMNS: &[&str] = &[
    "symbol",
    "date",
    "sec",
    "time",
    "pattern",
    "phase",
    "local_quality",
    "volume_velocity",
    "price_velocity",
    "price",
    "move_so_far",
    "range_so_far",
    "category",
    "quality",
];

impl Table {
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Table::Days => DAY_COLUMNS,
            Table::Resets => RESET_COLUMNS,
        }
    }
    pub fn rows(self, idx: &Index) -> usize {
        match self {
            Table::Days => idx.days.len(),
            Table::Resets => idx.resets.len(),
        }
    }

    /// Value of column `col` (an index into [`Table::columns`]) in row `row`.
    pub fn value(self, idx: &Index, row: usize, col: usize) -> Value {
        use Value::*;
        let opt = |x: Option<f64>| x.map_or(Null, Num);
        match self {
            Table::Days => {
                let d = &idx.days[row];
                match DAY_COLUMNS[col] {
                    "symbol" => Text(d.symbol.clone()),
                    "date" => Text(d.date.to_string()),
                    "open" => Num(d.open),
                    "high" => Num(d.high),
                    "low" => Num(d.low),
                    "close" => Num(d.close),
                    "volume" => Num(d.volume as f64),
                    "dollar_volume" => Num(d.dollar_volume),
                    "bars" => Num(d.bars as f64),
                    "range" => Num(d.range),
                    "change" => Num(d.change),
                    "gap" => opt(d.gap),
                    "max_runup" => Num(d.max_runup),
                    "max_drawdown" => Num(d.max_drawdown),
                    "max_move" => Num(d.max_move),
                    "trend" => Num(d.trend),
                    "halts" => Num(d.halts as f64),
                    "squeezes" => Num(d.squeezes as f64),
                    "rel_volume" => opt(d.rel_volume),
                    "volume_history" => Num(d.volume_history as f64),
                    "momentum" => Bool(d.momentum),
                    "quality" => Num(d.quality),
                    "category" => Text(d.category.name().into()),
                    "resets" => Num(d.resets as f64),
                    "path" => Text(d.path.clone()),
                    _ => Null,
                }
            }
            Table::Resets => {
                let r = &idx.resets[row];
                match RESET_COLUMNS[col] {
                    "symbol" => Text(r.symbol.clone()),
                    "date" => Text(r.date.to_string()),
                    "sec" => Num(r.sec as f64),
                    "time" => Text(format!(
                        "{:02}:{:02}:{:02}",
                        r.sec / 3600,
                        r.sec / 60 % 60,
                        r.sec % 60
                    )),
                    "pattern" => Text(r.pattern.name().into()),
                    "phase" => Text(r.phase.name().into()),
                    "local_quality" => Num(r.local_quality),
                    "volume_velocity" => Num(r.volume_velocity),
                    "price_velocity" => Num(r.price_velocity),
                    "price" => Num(r.price),
                    "move_so_far" => Num(r.move_so_far),
                    "range_so_far" => Num(r.range_so_far),
                    "category" => Text(idx.days[r.day as usize].category.name().into()),
                    "quality" => Num(idx.days[r.day as usize].quality),
                    _ => Null,
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed predicate; column names are resolved to indexes of the table's columns.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(usize, Op, Value),
    In(usize, Vec<Value>),
    IsNull(usize, bool),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Str(String),
    Op(Op),
    LParen,
    RParen,
    Comma,
}

fn lex(s: &str) -> std::result::Result<Vec<Tok>, String> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        match ch {
            _ if ch.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '\'' | '"' => {
                let end = c[i + 1..]
                    .iter()
                    .position(|&x| x == ch)
                    .ok_or_else(|| format!("unterminated text starting at character {}", i + 1))?;
                out.push(Tok::Str(c[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '=' | '!' | '<' | '>' => {
                let two: String = c[i..(i + 2).min(c.len())].iter().collect();
                let (op, len) = match two.as_str() {
                    "==" => (Op::Eq, 2),
                    "!=" | "<>" => (Op::Ne, 2),
                    "<=" => (Op::Le, 2),
                    ">=" => (Op::Ge, 2),
                    _ => match ch {
                        '=' => (Op::Eq, 1),
                        '<' => (Op::Lt, 1),
                        '>' => (Op::Gt, 1),
                        _ => return Err(format!("unexpected '!' at character {}", i + 1)),
                    },
                };
                out.push(Tok::Op(op));
                i += len;
            }
            _ if ch.is_ascii_digit() || ch == '.' || ch == '-' || ch == '+' => {
                let start = i;
                i += 1;
                while i < c.len()
                    && (c[i].is_ascii_alphanumeric()
                        || c[i] == '.'
                        || ((c[i] == '-' || c[i] == '+') && matches!(c[i - 1], 'e' | 'E')))
                {
                    i += 1;
                }
                let text: String = c[start..i].iter().collect();
                let v: f64 = text
                    .parse()
                    .map_err(|_| format!("'{text}' is not a number"))?;
                out.push(Tok::Num(v));
            }
            _ if ch.is_alphabetic() || ch == '_' => {
                let start = i;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
                out.push(Tok::Ident(c[start..i].iter().collect()));
            }
            _ => return Err(format!("unexpected '{ch}' at character {}", i + 1)),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    table: Table,
    text: &'a str,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> Error {
        Error::Usage(format!("--where \"{}\": {what}", self.text))
    }
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }
    fn expr(&mut self) -> Result<Expr> {
        let mut e = self.and()?;
        while self.peek_kw("or") {
            self.pos += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr> {
        let mut e = self.unary()?;
        while self.peek_kw("and") {
            self.pos += 1;
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }
    fn unary(&mut self) -> Result<Expr> {
        if self.peek_kw("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.toks.get(self.pos) == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.expr()?;
            if self.toks.get(self.pos) != Some(&Tok::RParen) {
                return Err(self.err("missing ')'"));
            }
            self.pos += 1;
            return Ok(e);
        }
        self.compare()
    }
    fn column(&mut self) -> Result<usize> {
        match self.toks.get(self.pos) {
            Some(Tok::Ident(name)) => {
                let cols = self.table.columns();
                let k = cols
                    .iter()
                    .position(|c| c.eq_ignore_ascii_case(name))
                    .ok_or_else(|| {
                        self.err(&format!(
                            "unknown column '{name}'; the {:?} table has: {}",
                            self.table,
                            cols.join(", ")
                        ))
                    })?;
                self.pos += 1;
                Ok(k)
            }
            other => Err(self.err(&format!("expected a column name, found {}", show(other)))),
        }
    }
    fn literal(&mut self) -> Result<Value> {
        let v = match self.toks.get(self.pos) {
            Some(Tok::Num(x)) => Value::Num(*x),
            Some(Tok::Str(s)) => Value::Text(s.clone()),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            other => {
                return Err(self.err(&format!(
                    "expected a value (a number, 'text', true or false), found {}",
                    show(other)
                )));
            }
        };
        self.pos += 1;
        Ok(v)
    }
    fn compare(&mut self) -> Result<Expr> {
        let col = self.column()?;
        if self.peek_kw("is") {
            self.pos += 1;
            let negate = self.peek_kw("not");
            if negate {
                self.pos += 1;
            }
            if !self.peek_kw("null") {
                return Err(self.err("expected NULL after IS"));
            }
            self.pos += 1;
            return Ok(Expr::IsNull(col, !negate));
        }
        if self.peek_kw("in") {
            self.pos += 1;
            if self.toks.get(self.pos) != Some(&Tok::LParen) {
                return Err(self.err("expected '(' after IN"));
            }
            self.pos += 1;
            let mut vals = vec![self.literal()?];
            while self.toks.get(self.pos) == Some(&Tok::Comma) {
                self.pos += 1;
                vals.push(self.literal()?);
            }
            if self.toks.get(self.pos) != Some(&Tok::RParen) {
                return Err(self.err("missing ')' after the IN list"));
            }
            self.pos += 1;
            for v in &vals {
                self.check_type(col, v)?;
            }
            return Ok(Expr::In(col, vals));
        }
        let op =
            match self.toks.get(self.pos) {
                Some(Tok::Op(op)) => *op,
                other => return Err(self.err(&format!(
                    "expected a comparison (=, !=, <, <=, >, >=, IN, IS NULL) after '{}', found {}",
                    self.table.columns()[col],
                    show(other)
                ))),
            };
        self.pos += 1;
        let v = self.literal()?;
        self.check_type(col, &v)?;
        Ok(Expr::Cmp(col, op, v))
    }
    /// Refuses comparing a text column with a number and so on.
    fn check_type(&self, col: usize, v: &Value) -> Result<()> {
        let name = self.table.columns()[col];
        let text = matches!(
            name,
            "symbol" | "date" | "category" | "pattern" | "phase" | "path" | "time"
        );
        let boolean = name == "momentum";
        let ok = match v {
            Value::Text(_) => text,
            Value::Bool(_) => boolean,
            Value::Num(_) => !text && !boolean,
            Value::Null => true,
        };
        if ok {
            Ok(())
        } else {
            let kind = if text {
                "text (quote it: 'value')"
            } else if boolean {
                "true or false"
            } else {
                "a number"
            };
            Err(self.err(&format!("column '{name}' holds {kind}")))
        }
    }
}

fn show(t: Option<&Tok>) -> String {
    match t {
        None => "the end".into(),
        Some(t) => format!("{t:?}"),
    }
}

/// Parses `text` against the columns of `table`.
pub fn parse(text: &str, table: Table) -> Result<Expr> {
    let toks = lex(text).map_err(|e| Error::Usage(format!("--where \"{text}\": {e}")))?;
    let mut p = Parser {
        toks,
        pos: 0,
        table,
        text,
    };
    let e = p.expr()?;
    if p.pos != p.toks.len() {
        return Err(p.err(&format!(
            "unexpected {} (join conditions with AND / OR)",
            show(p.toks.get(p.pos))
        )));
    }
    Ok(e)
}

fn cmp(a: &Value, op: Op, b: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (a, b) {
        (Value::Num(x), Value::Num(y)) => x.partial_cmp(y),
        (Value::Text(x), Value::Text(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    };
    match (ord, op) {
        (None, _) => false,
        (Some(o), Op::Eq) => o == Ordering::Equal,
        (Some(o), Op::Ne) => o != Ordering::Equal,
        (Some(o), Op::Lt) => o == Ordering::Less,
        (Some(o), Op::Le) => o != Ordering::Greater,
        (Some(o), Op::Gt) => o == Ordering::Greater,
        (Some(o), Op::Ge) => o != Ordering::Less,
    }
}

impl Expr {
    pub fn eval(&self, table: Table, idx: &Index, row: usize) -> bool {
        match self {
            Expr::Or(a, b) => a.eval(table, idx, row) || b.eval(table, idx, row),
            Expr::And(a, b) => a.eval(table, idx, row) && b.eval(table, idx, row),
            Expr::Not(a) => !a.eval(table, idx, row),
            Expr::Cmp(c, op, v) => cmp(&table.value(idx, row, *c), *op, v),
            Expr::In(c, vs) => {
                let x = table.value(idx, row, *c);
                vs.iter().any(|v| cmp(&x, Op::Eq, v))
            }
            Expr::IsNull(c, want) => (table.value(idx, row, *c) == Value::Null) == *want,
        }
    }
}

/// Rows of `table` matching `where_` (all rows when None), in table order.
pub fn select(idx: &Index, table: Table, where_: Option<&str>) -> Result<Vec<usize>> {
    let expr = where_.map(|w| parse(w, table)).transpose()?;
    Ok((0..table.rows(idx))
        .filter(|&r| expr.as_ref().is_none_or(|e| e.eval(table, idx, r)))
        .collect())
}

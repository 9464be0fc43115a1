//! The Condition element: `{"Operator": {"key": value or [values]}}`. Every operator and
//! every key of a block must hold (AND); the values of one key are alternatives (OR).

mod keys;
mod operator;
pub(crate) mod scalar;

use crate::document::Strings;
use crate::pattern::{Pattern, Syntax, Token, glob};
use crate::request::RequestView;
use operator::{Base, Family, Operator, Qualifier};
use scalar::Cidr;

/// One value of a condition, compiled for its operator.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Text(Pattern),
    Number(f64),
    Date(i64),
    Bool(bool),
    Binary(String),
    Cidr(Cidr),
}

/// One operator applied to one key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    operator: Operator,
    /// The key as written (for `to_json`).
    key: String,
    /// The key evaluation looks up (OSS keys translated).
    lookup_key: String,
    values: Strings,
    operands: Vec<Operand>,
}

/// Why a condition block was refused: the AWS message and the detail.
pub(crate) struct ConditionError {
    pub message: &'static str,
    pub detail: String,
}

fn error(message: &'static str, detail: String) -> ConditionError {
    ConditionError { message, detail }
}

/// Parses a Condition element. `namespaces` are the key namespaces the document may use;
/// `variables` whether `${…}` is a policy variable (2012-10-17).
pub(crate) fn parse_block(
    block: &serde_json::Value,
    namespaces: &[&str],
    variables: bool,
) -> Result<Vec<Condition>, ConditionError> {
    let Some(block) = block.as_object() else {
        return Err(error(
            "Invalid policy syntax.",
            "Condition must be an object".into(),
        ));
    };
    let mut conditions = Vec::new();
    for (name, keys) in block {
        let operator = Operator::parse(name).ok_or_else(|| {
            error(
                "Policy has an invalid condition operator",
                format!("unknown operator {name:?}"),
            )
        })?;
        let Some(keys) = keys.as_object().filter(|k| !k.is_empty()) else {
            return Err(error(
                "Invalid policy syntax.",
                format!("{name} must map condition keys to values"),
            ));
        };
        for (key, value) in keys {
            let lookup_key = keys::translate(key, namespaces).ok_or_else(|| {
                error(
                    "Policy has an invalid condition key",
                    format!("unknown condition key {key:?}"),
                )
            })?;
            let values = Strings::parse_scalars(value)
                .filter(|v| !v.values.is_empty())
                .ok_or_else(|| {
                    error(
                        "Invalid policy syntax.",
                        format!("{name} {key}: values must be strings, numbers or booleans"),
                    )
                })?;
            let operands = values
                .values
                .iter()
                .map(|v| operand(operator.base, v, variables))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    error(
                        "Invalid policy syntax.",
                        format!(
                            "{name} {key}: {:?} is not a valid {} value",
                            values.values,
                            kind(operator.base)
                        ),
                    )
                })?;
            conditions.push(Condition {
                operator,
                key: key.clone(),
                lookup_key,
                values,
                operands,
            });
        }
    }
    Ok(conditions)
}

fn kind(base: Base) -> &'static str {
    match base.family() {
        Family::Numeric => "number",
        Family::Date => "date",
        Family::Bool | Family::Null => "boolean",
        Family::Ip => "CIDR",
        Family::Binary => "base64",
        Family::String | Family::Arn => "string",
    }
}

fn operand(base: Base, value: &str, variables: bool) -> Option<Operand> {
    Some(match base.family() {
        Family::String | Family::Arn => Operand::Text(Pattern::new(
            value,
            Syntax {
                wildcards: base.has_wildcards(),
                variables,
            },
        )),
        Family::Numeric => Operand::Number(scalar::number(value)?),
        Family::Date => Operand::Date(scalar::date(value)?),
        Family::Bool | Family::Null => Operand::Bool(parse_bool(value)?),
        Family::Binary => {
            let ok = !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
            Operand::Binary(ok.then(|| value.to_owned())?)
        }
        Family::Ip => Operand::Cidr(Cidr::parse(value)?),
    })
}

fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

impl Condition {
    /// The operator's canonical name, the key as written and its values (for `to_json`).
    pub fn parts(&self) -> (String, &str, &Strings) {
        (self.operator.name(), &self.key, &self.values)
    }

    /// Whether the condition is a positive test of `key` against fixed values (no wildcard,
    /// no variable): what narrows a public statement.
    pub fn fixes(&self, key: &str) -> bool {
        if !self.lookup_key.eq_ignore_ascii_case(key)
            || self.operator.if_exists
            || self.operator.base.is_negated()
            || self.operator.qualifier == Qualifier::ForAllValues
        {
            return false;
        }
        self.operands.iter().all(|o| match o {
            Operand::Text(p) => !p.has_wildcard() && !p.has_variable(),
            Operand::Cidr(c) => !c.is_broad(),
            Operand::Bool(_) | Operand::Number(_) | Operand::Date(_) | Operand::Binary(_) => {
                self.operator.base != Base::Null
            }
        })
    }

    /// Whether the condition holds for the request.
    pub fn holds(&self, request: &RequestView<'_>) -> bool {
        let values = request.values(&self.lookup_key);
        let base = self.operator.base;
        let present = values.as_deref().is_some_and(|v| !v.is_empty());
        if base == Base::Null {
            // `"Null": {"k": "true"}`: the key is absent.
            return self.operands.contains(&Operand::Bool(!present));
        }
        let Some(values) = values.filter(|_| present) else {
            return self.operator.if_exists
                || match self.operator.qualifier {
                    Qualifier::Single => base.is_negated(),
                    Qualifier::ForAnyValue => false,
                    Qualifier::ForAllValues => true,
                };
        };
        let lookup = |key: &str| request.first(key);
        // For one request value: does it satisfy the operator (negation included)?
        let satisfies = |value: &str| {
            let any = self
                .operands
                .iter()
                .any(|operand| compare(base, operand, value, &lookup));
            any != base.is_negated()
        };
        match self.operator.qualifier {
            Qualifier::Single if base.is_negated() => values.iter().all(|v| satisfies(v)),
            Qualifier::Single | Qualifier::ForAnyValue => values.iter().any(|v| satisfies(v)),
            Qualifier::ForAllValues => values.iter().all(|v| satisfies(v)),
        }
    }
}

/// Whether one request value matches one policy value under the operator's positive form.
fn compare(
    base: Base,
    operand: &Operand,
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> bool {
    match operand {
        Operand::Text(pattern) if base.family() == Family::Arn => {
            arn_matches(pattern, value, lookup)
        }
        Operand::Text(pattern) => pattern.matches(value, base.ignores_case(), lookup),
        Operand::Number(n) => scalar::number(value)
            .and_then(|v| v.partial_cmp(n))
            .is_some_and(|o| base.ordering_holds(o)),
        Operand::Date(d) => scalar::date(value).is_some_and(|v| base.ordering_holds(v.cmp(d))),
        Operand::Bool(b) => parse_bool(value) == Some(*b),
        Operand::Binary(b) => value == b,
        Operand::Cidr(cidr) => cidr.contains(value),
    }
}

/// ARNs compare component by component: a wildcard never spans a `:` of the first five.
fn arn_matches(pattern: &Pattern, value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
    let Some(tokens) = pattern.resolve(lookup) else {
        return false;
    };
    let pattern_parts = split_tokens(&tokens);
    let value_chars: Vec<char> = value.chars().collect();
    let value_parts: Vec<&[char]> = value_chars.splitn(6, |c| *c == ':').collect();
    pattern_parts.len() == 6
        && value_parts.len() == 6
        && pattern_parts
            .iter()
            .zip(&value_parts)
            .all(|(p, v)| glob(p, v))
}

fn split_tokens(tokens: &[Token]) -> Vec<&[Token]> {
    tokens.splitn(6, |t| *t == Token::Char(':')).collect()
}

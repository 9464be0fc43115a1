//! A JSON value that is a string or a list of strings, kept as written so that `to_json`
//! gives back the same shape.

use serde_json::Value;

/// A string or a list of strings, remembering which (so `to_json` writes it back the same way).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Strings {
    pub values: Vec<String>,
    pub single: bool,
}

impl Strings {
    /// A string or a non-empty list of strings.
    pub fn parse(value: &Value) -> Option<Strings> {
        match value {
            Value::String(s) => Some(Strings {
                values: vec![s.clone()],
                single: true,
            }),
            Value::Array(items) if !items.is_empty() => Some(Strings {
                values: items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<_>>()?,
                single: false,
            }),
            _ => None,
        }
    }

    /// Like [`Strings::parse`], also taking numbers and booleans (condition values), as text.
    pub fn parse_scalars(value: &Value) -> Option<Strings> {
        let scalar = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        match value {
            Value::Array(items) => Some(Strings {
                values: items.iter().map(scalar).collect::<Option<_>>()?,
                single: false,
            }),
            other => Some(Strings {
                values: vec![scalar(other)?],
                single: true,
            }),
        }
    }

    pub fn to_value(&self) -> Value {
        if self.single && self.values.len() == 1 {
            Value::String(self.values[0].clone())
        } else {
            Value::Array(self.values.iter().cloned().map(Value::String).collect())
        }
    }
}

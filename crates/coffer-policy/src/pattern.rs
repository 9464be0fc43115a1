//! Wildcard patterns as IAM writes them: `*` matches any run of characters, `?` any one, and
//! in 2012-10-17 documents `${key}` is a policy variable (`${aws:username}`, with an optional
//! `${key, 'default'}`) and `${*}`, `${?}`, `${$}` are the literal characters.
//!
//! A variable's value is substituted literally: a user name containing `*` is not a wildcard.

/// What a pattern may contain besides literal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Syntax {
    /// `*` and `?` are wildcards (`…Like` operators, actions, resources).
    pub wildcards: bool,
    /// `${…}` is a policy variable (documents of Version 2012-10-17).
    pub variables: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    AnyRun,
    AnyOne,
    Variable {
        key: String,
        default: Option<String>,
    },
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    parts: Vec<Part>,
}

/// One token of a pattern whose variables have been resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    Char(char),
    AnyRun,
    AnyOne,
}

impl Pattern {
    /// Compiles `text` under `syntax`. Never fails: text that is not a well-formed variable is
    /// literal, as it is for AWS.
    pub fn new(text: &str, syntax: Syntax) -> Pattern {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if syntax.variables
                && rest.starts_with("${")
                && let Some(end) = rest.find('}')
            {
                let inner = &rest[2..end];
                rest = &rest[end + 1..];
                match inner {
                    "*" | "?" | "$" => literal.push_str(inner),
                    _ => {
                        flush(&mut parts, &mut literal);
                        parts.push(variable(inner));
                    }
                }
                continue;
            }
            rest = &rest[c.len_utf8()..];
            match c {
                '*' if syntax.wildcards => {
                    flush(&mut parts, &mut literal);
                    parts.push(Part::AnyRun);
                }
                '?' if syntax.wildcards => {
                    flush(&mut parts, &mut literal);
                    parts.push(Part::AnyOne);
                }
                _ => literal.push(c),
            }
        }
        flush(&mut parts, &mut literal);
        Pattern { parts }
    }

    /// Whether the pattern has a `*` or `?` wildcard.
    pub fn has_wildcard(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::AnyRun | Part::AnyOne))
    }

    /// The text of a pattern without wildcards or variables.
    pub fn literal(&self) -> Option<String> {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Literal(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Whether the pattern uses a policy variable.
    pub fn has_variable(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Variable { .. }))
    }

    /// The pattern with its variables replaced by `lookup`'s values; `None` when a variable has
    /// no value and no default (the element then matches nothing, as on AWS).
    pub fn resolve(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Option<Vec<Token>> {
        let mut tokens = Vec::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => tokens.extend(text.chars().map(Token::Char)),
                Part::AnyRun => tokens.push(Token::AnyRun),
                Part::AnyOne => tokens.push(Token::AnyOne),
                Part::Variable { key, default } => {
                    let value = lookup(key).or_else(|| default.clone())?;
                    tokens.extend(value.chars().map(Token::Char));
                }
            }
        }
        Some(tokens)
    }

    /// Whether `text` matches, variables resolved by `lookup`.
    pub fn matches(
        &self,
        text: &str,
        ignore_case: bool,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> bool {
        let Some(tokens) = self.resolve(lookup) else {
            return false;
        };
        let chars: Vec<char> = text.chars().collect();
        if ignore_case {
            glob(&lower_tokens(&tokens), &lower_chars(&chars))
        } else {
            glob(&tokens, &chars)
        }
    }

    /// Whether `text` matches a pattern without variables.
    pub fn matches_plain(&self, text: &str, ignore_case: bool) -> bool {
        self.matches(text, ignore_case, &|_| None)
    }
}

fn flush(parts: &mut Vec<Part>, literal: &mut String) {
    if !literal.is_empty() {
        parts.push(Part::Literal(std::mem::take(literal)));
    }
}

/// `key` or `key, 'default'` (the default quoted with single quotes).
fn variable(inner: &str) -> Part {
    match inner.split_once(',') {
        Some((key, default)) => {
            let default = default.trim();
            let default = default
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .unwrap_or(default);
            Part::Variable {
                key: key.trim().to_owned(),
                default: Some(default.to_owned()),
            }
        }
        None => Part::Variable {
            key: inner.trim().to_owned(),
            default: None,
        },
    }
}

fn lower_chars(chars: &[char]) -> Vec<char> {
    chars.iter().flat_map(|c| c.to_lowercase()).collect()
}

fn lower_tokens(tokens: &[Token]) -> Vec<Token> {
    tokens
        .iter()
        .flat_map(|t| match t {
            Token::Char(c) => c.to_lowercase().map(Token::Char).collect::<Vec<_>>(),
            other => vec![*other],
        })
        .collect()
}

/// Glob matching with backtracking to the last `*` only: linear in practice, never
/// exponential.
pub(crate) fn glob(pattern: &[Token], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::AnyRun) => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(Token::AnyOne) => {
                p += 1;
                t += 1;
                continue;
            }
            Some(Token::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((star_p, star_t)) => {
                p = star_p + 1;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|tok| *tok == Token::AnyRun)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIKE: Syntax = Syntax {
        wildcards: true,
        variables: true,
    };

    fn user(key: &str) -> Option<String> {
        (key == "aws:username").then(|| "al*ce".to_owned())
    }

    #[test]
    fn wildcards() {
        let p = Pattern::new("arn:aws:s3:::bkt/*/x?z", LIKE);
        assert!(p.matches_plain("arn:aws:s3:::bkt/a/b/xyz", false));
        assert!(!p.matches_plain("arn:aws:s3:::bkt/a/b/xyyz", false));
        assert!(!p.matches_plain("arn:aws:s3:::BKT/a/xyz", false));
        assert!(p.matches_plain("ARN:aws:s3:::BKT/a/xyz", true));
        assert!(Pattern::new("*", LIKE).matches_plain("", false));
        assert!(!Pattern::new("?", LIKE).matches_plain("", false));
        assert!(Pattern::new("a**b", LIKE).matches_plain("ab", false));
    }

    #[test]
    fn variables_are_literal_and_need_a_value() {
        let p = Pattern::new("home/${aws:username}/*", LIKE);
        assert!(p.matches("home/al*ce/x", false, &user));
        assert!(!p.matches("home/alice/x", false, &user));
        assert!(!p.matches("home/al*ce/x", false, &|_| None));
        let d = Pattern::new("home/${aws:username, 'nobody'}", LIKE);
        assert!(d.matches("home/nobody", false, &|_| None));
        let escaped = Pattern::new("a${*}b${?}${$}", LIKE);
        assert!(escaped.matches_plain("a*b?$", false));
        assert!(!escaped.matches_plain("axb?$", false));
        let old = Pattern::new(
            "home/${aws:username}",
            Syntax {
                wildcards: true,
                variables: false,
            },
        );
        assert!(old.matches_plain("home/${aws:username}", false));
    }

    #[test]
    fn literal_syntax_keeps_stars() {
        let p = Pattern::new(
            "a*",
            Syntax {
                wildcards: false,
                variables: false,
            },
        );
        assert!(p.matches_plain("a*", false));
        assert!(!p.matches_plain("ab", false));
        assert!(!p.has_wildcard());
    }
}

//! Condition operators: the base comparison, the `ForAnyValue:`/`ForAllValues:` set
//! qualifier and the `…IfExists` suffix.

/// The comparison an operator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

const BASES: &[(&str, Base)] = &[
    ("StringEquals", Base::StringEquals),
    ("StringNotEquals", Base::StringNotEquals),
    ("StringEqualsIgnoreCase", Base::StringEqualsIgnoreCase),
    ("StringNotEqualsIgnoreCase", Base::StringNotEqualsIgnoreCase),
    ("StringLike", Base::StringLike),
    ("StringNotLike", Base::StringNotLike),
    ("NumericEquals", Base::NumericEquals),
    ("NumericNotEquals", Base::NumericNotEquals),
    ("NumericLessThan", Base::NumericLessThan),
    ("NumericLessThanEquals", Base::NumericLessThanEquals),
    ("NumericGreaterThan", Base::NumericGreaterThan),
    ("NumericGreaterThanEquals", Base::NumericGreaterThanEquals),
    ("DateEquals", Base::DateEquals),
    ("DateNotEquals", Base::DateNotEquals),
    ("DateLessThan", Base::DateLessThan),
    ("DateLessThanEquals", Base::DateLessThanEquals),
    ("DateGreaterThan", Base::DateGreaterThan),
    ("DateGreaterThanEquals", Base::DateGreaterThanEquals),
    ("Bool", Base::Bool),
    ("BinaryEquals", Base::BinaryEquals),
    ("IpAddress", Base::IpAddress),
    ("NotIpAddress", Base::NotIpAddress),
    ("ArnEquals", Base::ArnEquals),
    ("ArnLike", Base::ArnLike),
    ("ArnNotEquals", Base::ArnNotEquals),
    ("ArnNotLike", Base::ArnNotLike),
    ("Null", Base::Null),
];

/// What kind of value an operator compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    String,
    Numeric,
    Date,
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

impl Base {
    pub fn name(self) -> &'static str {
        BASES
            .iter()
            .find(|(_, b)| *b == self)
            .map(|(n, _)| *n)
            .expect("every base operator is in BASES")
    }

    /// Negated operators are true when no value matches, and when the key is missing.
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            Base::StringNotEquals
                | Base::StringNotEqualsIgnoreCase
                | Base::StringNotLike
                | Base::NumericNotEquals
                | Base::DateNotEquals
                | Base::NotIpAddress
                | Base::ArnNotEquals
                | Base::ArnNotLike
        )
    }

    pub fn family(self) -> Family {
        use Base::*;
        match self {
            StringEquals
            | StringNotEquals
            | StringEqualsIgnoreCase
            | StringNotEqualsIgnoreCase
            | StringLike
            | StringNotLike => Family::String,
            NumericEquals
            | NumericNotEquals
            | NumericLessThan
            | NumericLessThanEquals
            | NumericGreaterThan
            | NumericGreaterThanEquals => Family::Numeric,
            DateEquals
            | DateNotEquals
            | DateLessThan
            | DateLessThanEquals
            | DateGreaterThan
            | DateGreaterThanEquals => Family::Date,
            Bool => Family::Bool,
            BinaryEquals => Family::Binary,
            IpAddress | NotIpAddress => Family::Ip,
            ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => Family::Arn,
            Null => Family::Null,
        }
    }

    /// For `…Like` string operators, `*` and `?` are wildcards.
    pub fn has_wildcards(self) -> bool {
        matches!(
            self,
            Base::StringLike
                | Base::StringNotLike
                | Base::ArnEquals
                | Base::ArnLike
                | Base::ArnNotEquals
                | Base::ArnNotLike
        )
    }

    pub fn ignores_case(self) -> bool {
        matches!(
            self,
            Base::StringEqualsIgnoreCase | Base::StringNotEqualsIgnoreCase
        )
    }

    /// How two ordered values must compare for the (non-negated) operator to hold.
    pub fn ordering_holds(self, ordering: std::cmp::Ordering) -> bool {
        use Base::*;
        use std::cmp::Ordering::*;
        match self {
            NumericLessThan | DateLessThan => ordering == Less,
            NumericLessThanEquals | DateLessThanEquals => ordering != Greater,
            NumericGreaterThan | DateGreaterThan => ordering == Greater,
            NumericGreaterThanEquals | DateGreaterThanEquals => ordering != Less,
            _ => ordering == Equal,
        }
    }
}

/// How an operator treats a multivalued key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qualifier {
    /// No prefix: the key is single-valued (any value of a multivalued one may match).
    Single,
    /// `ForAnyValue:`: at least one request value matches; false when the key is missing.
    ForAnyValue,
    /// `ForAllValues:`: every request value matches; true when the key is missing or empty.
    ForAllValues,
}

/// A whole operator, e.g. `ForAllValues:StringLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operator {
    pub qualifier: Qualifier,
    pub base: Base,
    pub if_exists: bool,
}

impl Operator {
    /// Parses an operator name (case-sensitively, as IAM does; `Null` has no `IfExists` or
    /// set form).
    pub fn parse(name: &str) -> Option<Operator> {
        let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Qualifier::ForAnyValue, rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Qualifier::ForAllValues, rest)
        } else {
            (Qualifier::Single, name)
        };
        let (rest, if_exists) = match rest.strip_suffix("IfExists") {
            Some(rest) => (rest, true),
            None => (rest, false),
        };
        let base = BASES.iter().find(|(n, _)| *n == rest).map(|(_, b)| *b)?;
        if base == Base::Null && (if_exists || qualifier != Qualifier::Single) {
            return None;
        }
        Some(Operator {
            qualifier,
            base,
            if_exists,
        })
    }

    /// The canonical spelling.
    pub fn name(&self) -> String {
        let prefix = match self.qualifier {
            Qualifier::Single => "",
            Qualifier::ForAnyValue => "ForAnyValue:",
            Qualifier::ForAllValues => "ForAllValues:",
        };
        let suffix = if self.if_exists { "IfExists" } else { "" };
        format!("{prefix}{}{suffix}", self.base.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (name, _) in BASES {
            let op = Operator::parse(name).expect("known");
            assert_eq!(op.name(), *name);
        }
        let op = Operator::parse("ForAllValues:StringLikeIfExists").expect("known");
        assert_eq!(op.name(), "ForAllValues:StringLikeIfExists");
        assert!(Operator::parse("stringequals").is_none());
        assert!(Operator::parse("NullIfExists").is_none());
        assert!(Operator::parse("ForAnyValue:Null").is_none());
        assert!(Operator::parse("StringEqual").is_none());
        assert!(Operator::parse("ForSomeValues:StringEquals").is_none());
    }
}

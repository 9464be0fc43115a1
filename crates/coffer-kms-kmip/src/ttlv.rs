//! TTLV, KMIP's binary encoding (KMIP 1.4 §9.1): every item is a 3-byte tag, a 1-byte type, a
//! 4-byte big-endian length and the value, padded with zeros to a multiple of 8 bytes.
//! Structures nest items; the other types are scalars. The decoder reads server replies, so it
//! bounds nesting and checks every length against the bytes it has.

use zeroize::Zeroizing;

/// The fixed size of an item's tag, type and length.
pub const HEADER_LEN: usize = 8;
/// Nesting deeper than this is refused (KMIP messages nest about six levels).
const MAX_DEPTH: usize = 16;

/// A KMIP tag (`0x42xxxx`).
pub type Tag = u32;

/// One item: a tag and its typed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The item's tag.
    pub tag: Tag,
    /// The item's value.
    pub value: Value,
}

/// A TTLV value. Byte strings are zeroized on drop: they carry plaintext data keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `0x01`: items in order.
    Structure(Vec<Item>),
    /// `0x02`: a signed 32-bit integer.
    Integer(i32),
    /// `0x03`: a signed 64-bit integer.
    LongInteger(i64),
    /// `0x04`: a big-endian two's complement integer (kept as bytes).
    BigInteger(Vec<u8>),
    /// `0x05`: an unsigned 32-bit enumeration value.
    Enumeration(u32),
    /// `0x06`: a boolean.
    Boolean(bool),
    /// `0x07`: UTF-8 text.
    TextString(String),
    /// `0x08`: bytes.
    ByteString(Zeroizing<Vec<u8>>),
    /// `0x09`: seconds since the Unix epoch.
    DateTime(i64),
    /// `0x0A`: an unsigned 32-bit number of seconds.
    Interval(u32),
}

/// Why bytes are not a well-formed TTLV item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than a header or a length promise.
    #[error("truncated TTLV item")]
    Truncated,
    /// A type byte KMIP does not define.
    #[error("unknown TTLV type {0:#04x}")]
    UnknownType(u8),
    /// A fixed-size type with the wrong length, or non-zero padding.
    #[error("malformed TTLV item with tag {0:#08x}")]
    Malformed(Tag),
    /// Structures nested deeper than sixteen levels.
    #[error("TTLV nested too deeply")]
    TooDeep,
    /// Bytes left after the item.
    #[error("trailing bytes after the TTLV item")]
    Trailing,
}

impl Item {
    /// An item.
    pub fn new(tag: Tag, value: Value) -> Self {
        Self { tag, value }
    }

    /// A structure of `items`.
    pub fn structure(tag: Tag, items: Vec<Item>) -> Self {
        Self::new(tag, Value::Structure(items))
    }

    /// The item's encoding; zeroized on drop, as it may hold key material.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::new());
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.tag.to_be_bytes()[1..]);
        // The length field follows the tag and the type byte; the value follows it.
        let length_at = out.len() + 1;
        let (kind, fixed): (u8, Option<[u8; 8]>) = match &self.value {
            Value::Structure(_) => (0x01, None),
            Value::Integer(v) => (0x02, Some(four(v.to_be_bytes()))),
            Value::LongInteger(v) => (0x03, Some(v.to_be_bytes())),
            Value::BigInteger(_) => (0x04, None),
            Value::Enumeration(v) => (0x05, Some(four(v.to_be_bytes()))),
            Value::Boolean(v) => (0x06, Some(u64::from(*v).to_be_bytes())),
            Value::TextString(_) => (0x07, None),
            Value::ByteString(_) => (0x08, None),
            Value::DateTime(v) => (0x09, Some(v.to_be_bytes())),
            Value::Interval(v) => (0x0A, Some(four(v.to_be_bytes()))),
        };
        out.push(kind);
        out.extend_from_slice(&[0; 4]);
        let length = match (&self.value, fixed) {
            (Value::Integer(_) | Value::Enumeration(_) | Value::Interval(_), Some(bytes)) => {
                out.extend_from_slice(&bytes);
                4
            }
            (_, Some(bytes)) => {
                out.extend_from_slice(&bytes);
                8
            }
            (Value::Structure(items), None) => {
                for item in items {
                    item.encode_into(out);
                }
                out.len() - length_at - 4
            }
            (Value::TextString(text), None) => padded(out, text.as_bytes()),
            (Value::ByteString(bytes), None) => padded(out, bytes),
            (Value::BigInteger(bytes), None) => padded(out, bytes),
            (_, None) => unreachable!("every scalar type has a fixed encoding"),
        };
        let length = u32::try_from(length).expect("a KMIP request is far below 4 GiB");
        out[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
    }

    /// Decodes exactly one item spanning all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Item, DecodeError> {
        let (item, used) = decode_item(bytes, 0)?;
        if used != bytes.len() {
            return Err(DecodeError::Trailing);
        }
        Ok(item)
    }

    /// The first child with `tag`, if this is a structure.
    pub fn child(&self, tag: Tag) -> Option<&Item> {
        self.children().iter().find(|item| item.tag == tag)
    }

    /// Every child with `tag`.
    pub fn children_tagged(&self, tag: Tag) -> impl Iterator<Item = &Item> {
        self.children().iter().filter(move |item| item.tag == tag)
    }

    /// The items of a structure; none for a scalar.
    pub fn children(&self) -> &[Item] {
        match &self.value {
            Value::Structure(items) => items,
            _ => &[],
        }
    }

    /// The child's text, if it is a text string.
    pub fn text(&self, tag: Tag) -> Option<&str> {
        match &self.child(tag)?.value {
            Value::TextString(text) => Some(text),
            _ => None,
        }
    }

    /// The child's bytes, if it is a byte string.
    pub fn bytes(&self, tag: Tag) -> Option<&[u8]> {
        match &self.child(tag)?.value {
            Value::ByteString(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The child's enumeration value.
    pub fn enumeration(&self, tag: Tag) -> Option<u32> {
        match self.child(tag)?.value {
            Value::Enumeration(value) => Some(value),
            _ => None,
        }
    }

    /// The child's integer value.
    pub fn integer(&self, tag: Tag) -> Option<i32> {
        match self.child(tag)?.value {
            Value::Integer(value) => Some(value),
            _ => None,
        }
    }
}

/// The length an item's header announces, to read the rest of it from a stream.
pub fn announced_len(header: &[u8; HEADER_LEN]) -> usize {
    let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    padded_len(length as usize)
}

fn four(bytes: [u8; 4]) -> [u8; 8] {
    [bytes[0], bytes[1], bytes[2], bytes[3], 0, 0, 0, 0]
}

fn padded_len(len: usize) -> usize {
    len.div_ceil(8) * 8
}

/// Writes `bytes` and their zero padding; returns the unpadded length.
fn padded(out: &mut Vec<u8>, bytes: &[u8]) -> usize {
    out.extend_from_slice(bytes);
    out.resize(out.len() + padded_len(bytes.len()) - bytes.len(), 0);
    bytes.len()
}

/// One item at the start of `bytes`, and how many bytes it used (padding included).
fn decode_item(bytes: &[u8], depth: usize) -> Result<(Item, usize), DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let header: &[u8; HEADER_LEN] = bytes.first_chunk().ok_or(DecodeError::Truncated)?;
    let tag = u32::from_be_bytes([0, header[0], header[1], header[2]]);
    let kind = header[3];
    let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let body = &bytes[HEADER_LEN..];
    let value_bytes = body.get(..length).ok_or(DecodeError::Truncated)?;
    let used = padded_len(length);
    let padding = body.get(length..used).ok_or(DecodeError::Truncated)?;
    if padding.iter().any(|&b| b != 0) {
        return Err(DecodeError::Malformed(tag));
    }
    let malformed = || DecodeError::Malformed(tag);
    let exact = |n: usize| -> Result<&[u8], DecodeError> {
        if length == n {
            Ok(value_bytes)
        } else {
            Err(malformed())
        }
    };
    let value = match kind {
        0x01 => {
            let mut items = Vec::new();
            let mut rest = value_bytes;
            // A structure's length covers its items' padding, so it is a multiple of 8.
            if !length.is_multiple_of(8) {
                return Err(malformed());
            }
            while !rest.is_empty() {
                let (item, item_used) = decode_item(rest, depth + 1)?;
                items.push(item);
                rest = &rest[item_used..];
            }
            Value::Structure(items)
        }
        0x02 => Value::Integer(i32::from_be_bytes(array(exact(4)?))),
        0x03 => Value::LongInteger(i64::from_be_bytes(array(exact(8)?))),
        0x04 => Value::BigInteger(value_bytes.to_vec()),
        0x05 => Value::Enumeration(u32::from_be_bytes(array(exact(4)?))),
        0x06 => match u64::from_be_bytes(array(exact(8)?)) {
            0 => Value::Boolean(false),
            1 => Value::Boolean(true),
            _ => return Err(malformed()),
        },
        0x07 => Value::TextString(
            std::str::from_utf8(value_bytes)
                .map_err(|_| malformed())?
                .to_owned(),
        ),
        0x08 => Value::ByteString(Zeroizing::new(value_bytes.to_vec())),
        0x09 => Value::DateTime(i64::from_be_bytes(array(exact(8)?))),
        0x0A => Value::Interval(u32::from_be_bytes(array(exact(4)?))),
        other => return Err(DecodeError::UnknownType(other)),
    };
    Ok((Item { tag, value }, HEADER_LEN + used))
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes
        .try_into()
        .expect("the caller checked the length against the type")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i32>().prop_map(Value::Integer),
            any::<i64>().prop_map(Value::LongInteger),
            proptest::collection::vec(any::<u8>(), 0..24).prop_map(Value::BigInteger),
            any::<u32>().prop_map(Value::Enumeration),
            any::<bool>().prop_map(Value::Boolean),
            ".{0,20}".prop_map(Value::TextString),
            proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(|bytes| Value::ByteString(Zeroizing::new(bytes))),
            any::<i64>().prop_map(Value::DateTime),
            any::<u32>().prop_map(Value::Interval),
        ]
    }

    fn item() -> impl Strategy<Value = Item> {
        let leaf = (0x420000u32..0x420100, scalar()).prop_map(|(tag, value)| Item::new(tag, value));
        leaf.prop_recursive(4, 32, 6, |inner| {
            (
                0x420000u32..0x420100,
                proptest::collection::vec(inner, 0..6),
            )
                .prop_map(|(tag, items)| Item::structure(tag, items))
        })
    }

    proptest! {
        #[test]
        fn every_item_round_trips(item in item()) {
            let encoded = item.encode();
            prop_assert_eq!(encoded.len() % 8, 0);
            prop_assert_eq!(Item::decode(&encoded), Ok(item));
        }

        #[test]
        fn any_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Item::decode(&bytes);
        }
    }

    fn hex(bytes: &[u8]) -> String {
        hex::encode(bytes)
    }

    /// KMIP 1.4 §9.1.2's examples, one per type.
    #[test]
    fn encodes_the_specifications_examples() {
        let cases: [(Value, &str); 9] = [
            (Value::Integer(8), "42002002000000040000000800000000"),
            (
                Value::LongInteger(123_456_789_000_000_000),
                "420020030000000801b69b4ba5749200",
            ),
            (
                Value::BigInteger(hex::decode("0000000003fd35eb6bc2df4618080000").expect("hex")),
                "42002004000000100000000003fd35eb6bc2df4618080000",
            ),
            (Value::Enumeration(255), "4200200500000004000000ff00000000"),
            (Value::Boolean(true), "42002006000000080000000000000001"),
            (
                Value::TextString("Hello World".into()),
                "420020070000000b48656c6c6f20576f726c640000000000",
            ),
            (
                Value::ByteString(Zeroizing::new(vec![1, 2, 3])),
                "42002008000000030102030000000000",
            ),
            (
                Value::DateTime(0x47da67f8),
                "42002009000000080000000047da67f8",
            ),
            (Value::Interval(864_000), "4200200a00000004000d2f0000000000"),
        ];
        for (value, expected) in cases {
            let item = Item::new(0x420020, value);
            assert_eq!(hex(&item.encode()), expected, "{item:?}");
            assert_eq!(
                Item::decode(&hex::decode(expected).expect("hex")).expect("decode"),
                item
            );
        }
        let structure = Item::structure(
            0x420020,
            vec![
                Item::new(0x420004, Value::Enumeration(254)),
                Item::new(0x420005, Value::Integer(255)),
            ],
        );
        let expected =
            "42002001000000204200040500000004000000fe000000004200050200000004000000ff00000000";
        assert_eq!(hex(&structure.encode()), expected);
        assert_eq!(
            Item::decode(&hex::decode(expected).expect("hex")).expect("decode"),
            structure
        );
    }

    #[test]
    fn refuses_malformed_input() {
        let good = hex::decode("420020070000000b48656c6c6f20576f726c640000000000").expect("hex");
        for len in 0..good.len() {
            assert!(Item::decode(&good[..len]).is_err(), "cut to {len} bytes");
        }
        let mut padding = good.clone();
        padding[23] = 1;
        assert_eq!(
            Item::decode(&padding),
            Err(DecodeError::Malformed(0x420020))
        );
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0; 8]);
        assert_eq!(Item::decode(&trailing), Err(DecodeError::Trailing));
        assert_eq!(
            Item::decode(&hex::decode("42002002000000080000000000000008").expect("hex")),
            Err(DecodeError::Malformed(0x420020)),
            "an integer is four bytes"
        );
        assert_eq!(
            Item::decode(&hex::decode("420020ff000000000000000000000000").expect("hex")),
            Err(DecodeError::UnknownType(0xff))
        );
        // Structures nested past the limit: each header announces the rest.
        let mut deep = Vec::new();
        for level in 0..40u32 {
            let inner = (40 - level - 1) * 8;
            deep.extend_from_slice(&[0x42, 0x00, 0x01, 0x01]);
            deep.extend_from_slice(&inner.to_be_bytes());
        }
        assert_eq!(Item::decode(&deep), Err(DecodeError::TooDeep));
    }
}

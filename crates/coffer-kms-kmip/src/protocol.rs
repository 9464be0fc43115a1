//! The KMIP 1.4 messages Coffer sends, and reading their replies: one operation per request
//! message (batch count 1). Tags and enumeration values are KMIP 1.4 §9.1.3; the order of
//! fields follows the specification (and PyKMIP's encoder, which the tests compare against).

use zeroize::Zeroizing;

use crate::ttlv::{Item, Tag, Value};

/// The protocol version every request announces: 1.4 is the first with authenticated
/// encryption fields (Authenticated Encryption Additional Data and Tag) for Encrypt/Decrypt.
pub const PROTOCOL: (i32, i32) = (1, 4);

/// KMIP tags (KMIP 1.4 §9.1.3.1).
pub mod tag {
    use crate::ttlv::Tag;

    pub const ATTRIBUTE: Tag = 0x420008;
    pub const ATTRIBUTE_INDEX: Tag = 0x420009;
    pub const ATTRIBUTE_NAME: Tag = 0x42000A;
    pub const ATTRIBUTE_VALUE: Tag = 0x42000B;
    pub const BATCH_COUNT: Tag = 0x42000D;
    pub const BATCH_ITEM: Tag = 0x42000F;
    pub const BLOCK_CIPHER_MODE: Tag = 0x420011;
    pub const CRYPTOGRAPHIC_ALGORITHM: Tag = 0x420028;
    pub const CRYPTOGRAPHIC_PARAMETERS: Tag = 0x42002B;
    pub const IV_COUNTER_NONCE: Tag = 0x42003D;
    pub const NAME_TYPE: Tag = 0x420054;
    pub const NAME_VALUE: Tag = 0x420055;
    pub const OBJECT_TYPE: Tag = 0x420057;
    pub const OPERATION: Tag = 0x42005C;
    pub const PROTOCOL_VERSION: Tag = 0x420069;
    pub const PROTOCOL_VERSION_MAJOR: Tag = 0x42006A;
    pub const PROTOCOL_VERSION_MINOR: Tag = 0x42006B;
    pub const REQUEST_HEADER: Tag = 0x420077;
    pub const REQUEST_MESSAGE: Tag = 0x420078;
    pub const REQUEST_PAYLOAD: Tag = 0x420079;
    pub const RESPONSE_MESSAGE: Tag = 0x42007B;
    pub const RESPONSE_PAYLOAD: Tag = 0x42007C;
    pub const RESULT_MESSAGE: Tag = 0x42007D;
    pub const RESULT_REASON: Tag = 0x42007E;
    pub const RESULT_STATUS: Tag = 0x42007F;
    pub const REVOCATION_REASON: Tag = 0x420081;
    pub const REVOCATION_REASON_CODE: Tag = 0x420082;
    pub const TEMPLATE_ATTRIBUTE: Tag = 0x420091;
    pub const UNIQUE_IDENTIFIER: Tag = 0x420094;
    pub const DATA: Tag = 0x4200C2;
    pub const TAG_LENGTH: Tag = 0x4200CE;
    pub const AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA: Tag = 0x4200FE;
    pub const AUTHENTICATED_ENCRYPTION_TAG: Tag = 0x4200FF;
}

/// The operations Coffer uses (KMIP 1.4 §9.1.3.2.27).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create = 0x01,
    Locate = 0x08,
    GetAttributes = 0x0B,
    Activate = 0x12,
    Revoke = 0x13,
    Encrypt = 0x1F,
    Decrypt = 0x20,
}

/// Result Reason values Coffer tells apart (KMIP 1.4 §9.1.3.2.29).
pub mod reason {
    pub const ITEM_NOT_FOUND: u32 = 0x01;
    pub const CRYPTOGRAPHIC_FAILURE: u32 = 0x0A;
}

/// State values (KMIP 1.4 §9.1.3.2.18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectState {
    PreActive,
    Active,
    Deactivated,
    Compromised,
    Destroyed,
    DestroyedCompromised,
}

impl ObjectState {
    fn from_value(value: u32) -> Option<Self> {
        Some(match value {
            1 => Self::PreActive,
            2 => Self::Active,
            3 => Self::Deactivated,
            4 => Self::Compromised,
            5 => Self::Destroyed,
            6 => Self::DestroyedCompromised,
            _ => return None,
        })
    }
}

const OBJECT_TYPE_SYMMETRIC_KEY: u32 = 0x02;
const ALGORITHM_AES: u32 = 0x03;
const BLOCK_CIPHER_MODE_GCM: u32 = 0x09;
const NAME_TYPE_TEXT: u32 = 0x01;
const USAGE_ENCRYPT: i32 = 0x04;
const USAGE_DECRYPT: i32 = 0x08;
const REVOCATION_CESSATION_OF_OPERATION: u32 = 0x06;
/// GCM's tag, in bytes.
pub const GCM_TAG_LEN: usize = 16;

/// A whole request message for one operation.
pub fn request(operation: Operation, payload: Vec<Item>) -> Item {
    let (major, minor) = PROTOCOL;
    Item::structure(
        tag::REQUEST_MESSAGE,
        vec![
            Item::structure(
                tag::REQUEST_HEADER,
                vec![
                    Item::structure(
                        tag::PROTOCOL_VERSION,
                        vec![
                            Item::new(tag::PROTOCOL_VERSION_MAJOR, Value::Integer(major)),
                            Item::new(tag::PROTOCOL_VERSION_MINOR, Value::Integer(minor)),
                        ],
                    ),
                    Item::new(tag::BATCH_COUNT, Value::Integer(1)),
                ],
            ),
            Item::structure(
                tag::BATCH_ITEM,
                vec![
                    Item::new(tag::OPERATION, Value::Enumeration(operation as u32)),
                    Item::structure(tag::REQUEST_PAYLOAD, payload),
                ],
            ),
        ],
    )
}

fn text(tag: Tag, text: &str) -> Item {
    Item::new(tag, Value::TextString(text.to_owned()))
}

fn bytes(tag: Tag, bytes: &[u8]) -> Item {
    Item::new(tag, Value::ByteString(Zeroizing::new(bytes.to_vec())))
}

fn attribute(name: &str, value: Item) -> Item {
    Item::structure(tag::ATTRIBUTE, vec![text(tag::ATTRIBUTE_NAME, name), value])
}

fn name_attribute(name: &str) -> Item {
    attribute("Name", name_value(name))
}

fn name_value(name: &str) -> Item {
    Item::structure(
        tag::ATTRIBUTE_VALUE,
        vec![
            text(tag::NAME_VALUE, name),
            Item::new(tag::NAME_TYPE, Value::Enumeration(NAME_TYPE_TEXT)),
        ],
    )
}

/// Create: an AES-256 key usable for Encrypt and Decrypt, with these Names.
pub fn create_aes_key(names: &[&str]) -> Vec<Item> {
    let mut attributes = vec![
        attribute(
            "Cryptographic Algorithm",
            Item::new(tag::ATTRIBUTE_VALUE, Value::Enumeration(ALGORITHM_AES)),
        ),
        attribute(
            "Cryptographic Length",
            Item::new(tag::ATTRIBUTE_VALUE, Value::Integer(256)),
        ),
        attribute(
            "Cryptographic Usage Mask",
            Item::new(
                tag::ATTRIBUTE_VALUE,
                Value::Integer(USAGE_ENCRYPT | USAGE_DECRYPT),
            ),
        ),
    ];
    if let [name] = names {
        attributes.push(name_attribute(name));
    } else {
        // Several Names: each with its Attribute Index (PyKMIP requires it then).
        attributes.extend(names.iter().zip(0..).map(|(name, index)| {
            Item::structure(
                tag::ATTRIBUTE,
                vec![
                    text(tag::ATTRIBUTE_NAME, "Name"),
                    Item::new(tag::ATTRIBUTE_INDEX, Value::Integer(index)),
                    name_value(name),
                ],
            )
        }));
    }
    vec![
        Item::new(
            tag::OBJECT_TYPE,
            Value::Enumeration(OBJECT_TYPE_SYMMETRIC_KEY),
        ),
        Item::structure(tag::TEMPLATE_ATTRIBUTE, attributes),
    ]
}

/// Locate: the symmetric keys with this Name, or every symmetric key.
pub fn locate(name: Option<&str>) -> Vec<Item> {
    let mut payload = vec![attribute(
        "Object Type",
        Item::new(
            tag::ATTRIBUTE_VALUE,
            Value::Enumeration(OBJECT_TYPE_SYMMETRIC_KEY),
        ),
    )];
    payload.extend(name.map(name_attribute));
    payload
}

/// Get Attributes: an object's Names, State and Initial Date.
pub fn get_attributes(unique_id: &str) -> Vec<Item> {
    vec![
        text(tag::UNIQUE_IDENTIFIER, unique_id),
        text(tag::ATTRIBUTE_NAME, "Name"),
        text(tag::ATTRIBUTE_NAME, "State"),
        text(tag::ATTRIBUTE_NAME, "Initial Date"),
    ]
}

/// Activate or anything else that takes only the object.
pub fn object(unique_id: &str) -> Vec<Item> {
    vec![text(tag::UNIQUE_IDENTIFIER, unique_id)]
}

/// Revoke: the object becomes Deactivated (for good: KMIP has no way back to Active).
pub fn revoke(unique_id: &str) -> Vec<Item> {
    vec![
        text(tag::UNIQUE_IDENTIFIER, unique_id),
        Item::structure(
            tag::REVOCATION_REASON,
            vec![Item::new(
                tag::REVOCATION_REASON_CODE,
                Value::Enumeration(REVOCATION_CESSATION_OF_OPERATION),
            )],
        ),
    ]
}

fn gcm_parameters() -> Item {
    Item::structure(
        tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![
            Item::new(
                tag::BLOCK_CIPHER_MODE,
                Value::Enumeration(BLOCK_CIPHER_MODE_GCM),
            ),
            Item::new(
                tag::CRYPTOGRAPHIC_ALGORITHM,
                Value::Enumeration(ALGORITHM_AES),
            ),
            Item::new(tag::TAG_LENGTH, Value::Integer(GCM_TAG_LEN as i32)),
        ],
    )
}

/// Encrypt: AES-GCM inside the server with Coffer's nonce and additional data.
pub fn encrypt(unique_id: &str, plaintext: &[u8], nonce: &[u8], aad: &[u8]) -> Vec<Item> {
    vec![
        text(tag::UNIQUE_IDENTIFIER, unique_id),
        gcm_parameters(),
        bytes(tag::DATA, plaintext),
        bytes(tag::IV_COUNTER_NONCE, nonce),
        bytes(tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, aad),
    ]
}

/// Decrypt: the inverse of [`encrypt`]; the server checks the tag.
pub fn decrypt(
    unique_id: &str,
    ciphertext: &[u8],
    nonce: &[u8],
    aad: &[u8],
    gcm_tag: &[u8],
) -> Vec<Item> {
    vec![
        text(tag::UNIQUE_IDENTIFIER, unique_id),
        gcm_parameters(),
        bytes(tag::DATA, ciphertext),
        bytes(tag::IV_COUNTER_NONCE, nonce),
        bytes(tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, aad),
        bytes(tag::AUTHENTICATED_ENCRYPTION_TAG, gcm_tag),
    ]
}

/// What one reply said.
#[derive(Debug)]
pub enum Reply {
    /// The operation succeeded; its response payload (empty when the reply had none).
    Success(Item),
    /// The operation failed with this Result Reason and message.
    Failure { reason: u32, message: String },
}

/// Reads a response message for `operation`; `Err` says what is malformed.
pub fn reply(message: Item, operation: Operation) -> Result<Reply, String> {
    if message.tag != tag::RESPONSE_MESSAGE {
        return Err(format!("not a response message (tag {:#08x})", message.tag));
    }
    let mut items = message.children_tagged(tag::BATCH_ITEM);
    let item = items.next().ok_or("a response without a batch item")?;
    if items.next().is_some() {
        return Err("a response with more than one batch item".into());
    }
    if let Some(answered) = item.enumeration(tag::OPERATION)
        && answered != operation as u32
    {
        return Err(format!(
            "a response for operation {answered:#x}, not {:#x}",
            operation as u32
        ));
    }
    match item.enumeration(tag::RESULT_STATUS) {
        Some(0) => Ok(Reply::Success(
            item.child(tag::RESPONSE_PAYLOAD)
                .cloned()
                .unwrap_or_else(|| Item::structure(tag::RESPONSE_PAYLOAD, Vec::new())),
        )),
        Some(_) => Ok(Reply::Failure {
            reason: item.enumeration(tag::RESULT_REASON).unwrap_or(0),
            message: item
                .text(tag::RESULT_MESSAGE)
                .unwrap_or_default()
                .to_owned(),
        }),
        None => Err("a response without a result status".into()),
    }
}

/// An object's attributes as Get Attributes answered them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectAttributes {
    pub names: Vec<String>,
    pub state: Option<ObjectState>,
    /// Seconds since the Unix epoch.
    pub initial_date: Option<i64>,
}

/// Reads a Get Attributes response payload.
pub fn attributes(payload: &Item) -> ObjectAttributes {
    let mut found = ObjectAttributes {
        names: Vec::new(),
        state: None,
        initial_date: None,
    };
    for attribute in payload.children_tagged(tag::ATTRIBUTE) {
        let Some(value) = attribute.child(tag::ATTRIBUTE_VALUE) else {
            continue;
        };
        match (attribute.text(tag::ATTRIBUTE_NAME), &value.value) {
            (Some("Name"), Value::Structure(_)) => {
                found
                    .names
                    .extend(value.text(tag::NAME_VALUE).map(str::to_owned));
            }
            (Some("State"), Value::Enumeration(state)) => {
                found.state = ObjectState::from_value(*state);
            }
            (Some("Initial Date"), Value::DateTime(seconds)) => found.initial_date = Some(*seconds),
            _ => {}
        }
    }
    found
}

/// The Unique Identifiers a Locate response lists.
pub fn located(payload: &Item) -> Vec<String> {
    payload
        .children_tagged(tag::UNIQUE_IDENTIFIER)
        .filter_map(|item| match &item.value {
            Value::TextString(id) => Some(id.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte vectors PyKMIP 0.11's encoder wrote for the same messages (KMIP 1.4).
    const CREATE: &str = "42007801000001604200770100000038420069010000002042006a0200000004000000010000000042006b0200000004000000040000000042000d0200000004000000010000000042000f010000011842005c0500000004000000010000000042007901000001004200570500000004000000020000000042009101000000e8420008010000003042000a070000001743727970746f6772617068696320416c676f726974686d0042000b05000000040000000300000000420008010000003042000a070000001443727970746f67726170686963204c656e6774680000000042000b02000000040000010000000000420008010000003042000a070000001843727970746f67726170686963205573616765204d61736b42000b02000000040000000c00000000420008010000003842000a07000000044e616d650000000042000b010000002042005507000000026b3100000000000042005405000000040000000100000000";
    const ENCRYPT: &str = "42007801000000e04200770100000038420069010000002042006a0200000004000000010000000042006b0200000004000000040000000042000d0200000004000000010000000042000f010000009842005c05000000040000001f0000000042007901000000804200940700000001370000000000000042002b010000003042001105000000040000000900000000420028050000000400000003000000004200ce020000000400000010000000004200c20800000003010203000000000042003d080000000caaaaaaaaaaaaaaaaaaaaaaaa000000004200fe08000000036374780000000000";
    const ENCRYPT_RESPONSE: &str = "42007b01000000b842007a0100000048420069010000002042006a0200000004000000010000000042006b020000000400000004000000004200920900000008000000005f00000042000d0200000004000000010000000042000f010000006042005c05000000040000001f0000000042007f0500000004000000000000000042007c0100000038420094070000000137000000000000004200c2080000000310203000000000004200ff0800000010bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const FAILURE_RESPONSE: &str = "42007b01000000b042007a0100000048420069010000002042006a0200000004000000010000000042006b020000000400000004000000004200920900000008000000005f00000042000d0200000004000000010000000042000f010000005842005c05000000040000000b0000000042007f0500000004000000010000000042007e0500000004000000010000000042007d070000001a436f756c64206e6f74206c6f63617465206f626a6563743a2039000000000000";

    fn decode(hex: &str) -> Item {
        Item::decode(&hex::decode(hex).expect("hex")).expect("a well-formed message")
    }

    #[test]
    fn requests_match_pykmips_encoding() {
        let create = request(Operation::Create, create_aes_key(&["k1"]));
        assert_eq!(hex::encode(create.encode()), CREATE);
        let encrypt = request(
            Operation::Encrypt,
            encrypt("7", &[1, 2, 3], &[0xaa; 12], b"ctx"),
        );
        assert_eq!(hex::encode(encrypt.encode()), ENCRYPT);
    }

    #[test]
    fn reads_pykmips_replies() {
        let Ok(Reply::Success(payload)) = reply(decode(ENCRYPT_RESPONSE), Operation::Encrypt)
        else {
            panic!("a successful reply");
        };
        assert_eq!(payload.text(tag::UNIQUE_IDENTIFIER), Some("7"));
        assert_eq!(payload.bytes(tag::DATA), Some(&[0x10, 0x20, 0x30][..]));
        assert_eq!(
            payload.bytes(tag::AUTHENTICATED_ENCRYPTION_TAG),
            Some(&[0xbb; 16][..])
        );
        let Ok(Reply::Failure { reason, message }) =
            reply(decode(FAILURE_RESPONSE), Operation::GetAttributes)
        else {
            panic!("a failed reply");
        };
        assert_eq!(reason, reason::ITEM_NOT_FOUND);
        assert_eq!(message, "Could not locate object: 9");
        assert!(
            reply(decode(FAILURE_RESPONSE), Operation::Encrypt).is_err(),
            "a reply for another operation"
        );
        assert!(
            reply(decode(CREATE), Operation::Create).is_err(),
            "a request is no reply"
        );
    }

    #[test]
    fn reads_attributes() {
        let payload = Item::structure(
            tag::RESPONSE_PAYLOAD,
            vec![
                text(tag::UNIQUE_IDENTIFIER, "3"),
                name_attribute("key-id"),
                name_attribute("alias/aws/s3"),
                attribute(
                    "State",
                    Item::new(tag::ATTRIBUTE_VALUE, Value::Enumeration(3)),
                ),
                attribute(
                    "Initial Date",
                    Item::new(tag::ATTRIBUTE_VALUE, Value::DateTime(1_700_000_000)),
                ),
            ],
        );
        assert_eq!(
            attributes(&payload),
            ObjectAttributes {
                names: vec!["key-id".into(), "alias/aws/s3".into()],
                state: Some(ObjectState::Deactivated),
                initial_date: Some(1_700_000_000),
            }
        );
    }
}

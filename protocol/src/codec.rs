//! The envelope shared by every message: format version, message kind, postcard body.

use serde::{de::DeserializeOwned, Serialize};

/// The only format version this build reads and writes.
pub const FORMAT_VERSION: u8 = 1;

/// Messages longer than this are rejected before decoding. The largest decodable frame (255
/// objects, every field at its widest) is 6,176 B; a situation map track takes 13 to 31 B.
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;

/// The second byte of every message, so that bytes published on the wrong key are refused
/// instead of being misread as another type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageKind {
    FeatureFrame = 1,
    Alert = 2,
    SituationMap = 3,
    ClockRequest = 4,
    ClockReply = 5,
}

/// Why bytes could not be decoded into a message.
///
/// These are all peer errors: the sender is misbehaving or runs an incompatible version. A
/// receiver counts the message as rejected, keeps everything it accepted before and carries on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("empty message")]
    Empty,
    #[error("message of {len} bytes is longer than the limit of {limit}")]
    TooLong { len: usize, limit: usize },
    #[error("format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("message kind {found} where {expected:?} was expected")]
    WrongKind { found: u8, expected: MessageKind },
    #[error("message ends early, in the body of a {kind:?}")]
    Truncated { kind: MessageKind },
    #[error("malformed variable-length integer in a {kind:?}")]
    BadVarint { kind: MessageKind },
    #[error("invalid enum tag, flag bits or option marker in a {kind:?}")]
    BadTag { kind: MessageKind },
    #[error("invalid UTF-8 text in a {kind:?}")]
    BadText { kind: MessageKind },
    #[error("{n} unexpected bytes after the end of a {kind:?}")]
    TrailingBytes { kind: MessageKind, n: usize },
}

impl DecodeError {
    /// A short stable name, used as a label when rejected messages are counted by reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLong { .. } => "too_long",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::WrongKind { .. } => "wrong_kind",
            Self::Truncated { .. } => "truncated",
            Self::BadVarint { .. } => "bad_varint",
            Self::BadTag { .. } => "bad_tag",
            Self::BadText { .. } => "bad_text",
            Self::TrailingBytes { .. } => "trailing_bytes",
        }
    }
}

/// Why a message could not be encoded. Only reachable through misuse of the API (for example
/// more than [`crate::MAX_OBJECTS`] objects in a frame); callers should fix their input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("{what}: {count} exceeds the maximum of {max}")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("encoded message of {len} bytes exceeds the limit of {limit}")]
    TooLong { len: usize, limit: usize },
}

/// A type that travels on the wire in the v2e envelope.
pub trait Message: Serialize + DeserializeOwned {
    const KIND: MessageKind;

    /// Checks that only the encoder can violate (counts that the wire format cannot express).
    fn check_encodable(&self) -> Result<(), EncodeError> {
        Ok(())
    }

    fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        self.check_encodable()?;
        let out = vec![FORMAT_VERSION, Self::KIND as u8];
        // Serializing into a Vec cannot fail for our types: they contain no maps of unknown
        // length and no types postcard refuses.
        let out = postcard::to_extend(self, out).expect("postcard encodes every v2e message");
        if out.len() > MAX_MESSAGE_LEN {
            return Err(EncodeError::TooLong {
                len: out.len(),
                limit: MAX_MESSAGE_LEN,
            });
        }
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let kind = Self::KIND;
        match bytes {
            [] => return Err(DecodeError::Empty),
            _ if bytes.len() > MAX_MESSAGE_LEN => {
                return Err(DecodeError::TooLong {
                    len: bytes.len(),
                    limit: MAX_MESSAGE_LEN,
                })
            }
            [v, ..] if *v != FORMAT_VERSION => {
                return Err(DecodeError::UnsupportedVersion {
                    found: *v,
                    supported: FORMAT_VERSION,
                })
            }
            [_] => return Err(DecodeError::Truncated { kind }),
            [_, k, ..] if *k != kind as u8 => {
                return Err(DecodeError::WrongKind {
                    found: *k,
                    expected: kind,
                })
            }
            _ => {}
        }
        let (msg, rest) = postcard::take_from_bytes::<Self>(&bytes[2..]).map_err(|e| {
            use postcard::Error as E;
            match e {
                E::DeserializeUnexpectedEnd => DecodeError::Truncated { kind },
                E::DeserializeBadVarint => DecodeError::BadVarint { kind },
                E::DeserializeBadUtf8 | E::DeserializeBadChar => DecodeError::BadText { kind },
                _ => DecodeError::BadTag { kind },
            }
        })?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes {
                kind,
                n: rest.len(),
            });
        }
        Ok(msg)
    }
}

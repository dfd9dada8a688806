//! How stored values are encoded: MessagePack with structs as arrays
//! (`rmp_serde::to_vec`), compact and still able to read the domain's
//! tagged enums. Schema version 1 stored JSON; [`legacy_json`] reads it for
//! the migration at open.

use serde::{Serialize, de::DeserializeOwned};

/// A stored value that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

impl DecodeError {
    pub fn new(why: impl Into<String>) -> Self {
        Self(why.into())
    }
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec(value).expect("stored types encode: they have no maps with non-string keys")
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    rmp_serde::from_slice(bytes).map_err(|e| DecodeError(e.to_string()))
}

/// A value as schema version 1 stored it.
pub fn legacy_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(bytes).map_err(|e| DecodeError(e.to_string()))
}

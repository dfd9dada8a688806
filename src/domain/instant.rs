//! How instants are written: RFC 3339 text where people read it (JSON:
//! `--json`, templates), nanoseconds since the Unix epoch where they do not
//! (the store's MessagePack, a third of the bytes). Used as
//! `#[serde(with = "crate::domain::instant")]`.

use serde::{Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        time::serde::rfc3339::serialize(at, serializer)
    } else {
        let nanos = i64::try_from(at.unix_timestamp_nanos()).map_err(serde::ser::Error::custom)?;
        nanos.serialize(serializer)
    }
}

/// Either form, whatever the format says of itself: a value read through
/// a flattened struct loses that.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
    deserializer.deserialize_any(Instant)
}

struct Instant;

impl serde::de::Visitor<'_> for Instant {
    type Value = OffsetDateTime;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an RFC 3339 instant, or nanoseconds since the Unix epoch")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<OffsetDateTime, E> {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, nanos: i64) -> Result<OffsetDateTime, E> {
        OffsetDateTime::from_unix_timestamp_nanos(nanos.into()).map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, nanos: u64) -> Result<OffsetDateTime, E> {
        OffsetDateTime::from_unix_timestamp_nanos(nanos.into()).map_err(E::custom)
    }
}

/// The same for an optional instant.
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(at: &Option<OffsetDateTime>, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            time::serde::rfc3339::option::serialize(at, serializer)
        } else {
            let nanos = at.map(|at| i64::try_from(at.unix_timestamp_nanos())).transpose();
            nanos.map_err(serde::ser::Error::custom)?.serialize(serializer)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<OffsetDateTime>, D::Error> {
        deserializer.deserialize_option(Maybe)
    }

    struct Maybe;

    impl<'de> serde::de::Visitor<'de> for Maybe {
        type Value = Option<OffsetDateTime>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an instant, or nothing")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            super::deserialize(deserializer).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct At {
        #[serde(with = "super")]
        at: time::OffsetDateTime,
        #[serde(with = "super::option")]
        maybe: Option<time::OffsetDateTime>,
    }

    #[test]
    fn text_for_people_nanoseconds_for_the_store() {
        let value = At { at: datetime!(2026-12-01 12:00:00.123456789 UTC), maybe: None };
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, r#"{"at":"2026-12-01T12:00:00.123456789Z","maybe":null}"#);
        assert_eq!(serde_json::from_str::<At>(&json).unwrap(), value);
        let packed = rmp_serde::to_vec(&value).unwrap();
        assert!(packed.len() < 12, "{}", packed.len());
        assert_eq!(rmp_serde::from_slice::<At>(&packed).unwrap(), value);
        let some = At { maybe: Some(value.at), ..value };
        assert_eq!(rmp_serde::from_slice::<At>(&rmp_serde::to_vec(&some).unwrap()).unwrap(), some);
    }
}

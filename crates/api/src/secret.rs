//! A secret on the wire: read straight into a zeroizing [`Secret`], written only into a
//! request to the registry.

use secrets::Secret;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

/// A secret field of a request (an API key, a secret access key). It deserializes into a
/// [`Secret`] (no `Debug`, zeroized on drop) and serializes its plaintext: that is what a
/// request carrying a secret to the registry must do, and the one place it happens.
pub struct SecretField(pub Secret);

impl SecretField {
    pub fn new(plaintext: String) -> Self {
        Self(Secret::new(plaintext))
    }

    /// A second copy of the plaintext, for a request sent twice (a Test Connection of a
    /// draft, then its add). Both copies are zeroized on drop.
    pub fn duplicate(&self) -> Self {
        Self::new(self.0.expose_secret().to_owned())
    }
}

impl<'de> Deserialize<'de> for SecretField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

impl Serialize for SecretField {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.expose_secret())
    }
}

impl utoipa::PartialSchema for SecretField {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
            .write_only(Some(true))
            .description(Some("A secret: never returned, never logged."))
            .into()
    }
}

impl utoipa::ToSchema for SecretField {}

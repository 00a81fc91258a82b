//! Everything that signs or verifies: the key set and its rotation, compact JWS, and the
//! claims of ID tokens and access tokens.

pub mod access_token;
pub mod id_token;
pub mod jws;
pub mod keys;
pub mod lookup;

pub use keys::Keys;

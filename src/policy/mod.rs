//! Configuration in two stages: [`spec`] is what operators write (serde, unknown fields rejected,
//! errors name the field); [`compile`] turns it into the immutable [`Policy`] the data path uses.
//! An invalid document never replaces a compiled policy: the caller keeps the last good one.

pub mod compile;
pub mod spec;

pub use compile::{compile, load, ConfigError, Policy};

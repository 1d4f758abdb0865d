//! The operator's own use of the Kubernetes API beyond the controller runtime: credential
//! Secrets.

pub mod secrets;

pub use secrets::{FIELD_MANAGER, SecretAccess, SecretStore, SecretValues, SecretWrite};

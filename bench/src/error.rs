//! The bench's one error type: a message saying what was being done and why it failed.

use std::fmt::Display;

/// Why a benchmark could not run (not a missed target: those are figures).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(pub String);

pub type Result<T, E = BenchError> = std::result::Result<T, E>;

/// Adds what the bench was doing to an error.
pub trait Context<T> {
    fn context(self, what: impl Display) -> Result<T>;
}

impl<T, E: Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl Display) -> Result<T> {
        self.map_err(|e| BenchError(format!("{what}: {e}")))
    }
}

/// An error from a message.
pub fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(BenchError(message.into()))
}

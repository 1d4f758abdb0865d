//! The error the simulator's public API returns.

use std::net::SocketAddr;

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Only loopback addresses may be served: the simulator hands out tokens to anyone.
    #[error("refusing to listen on {0}: the simulator serves loopback addresses only")]
    NotLoopback(SocketAddr),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The seed file could not be read.
    #[error("cannot read seed file {path}: {source}")]
    ReadSeed {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The seed is not valid.
    #[error("invalid seed: {0}")]
    Seed(String),
}

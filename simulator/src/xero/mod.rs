//! Xero identity: `/connect/token` (refresh_token and authorization_code grants, rotation with
//! a grace period), `/connect/authorize` (auto-consent), `/connect/revocation`, and the
//! `/connections` endpoints of api.xero.com, and its `Organisation` endpoint with the
//! per-organisation limits.

mod authorize;
mod connections;
mod organisation;
mod response;
mod token;

pub use authorize::authorize;
pub use connections::{connections, delete_connection};
pub use organisation::organisation;
pub use response::{problem, token_error};
pub use token::{revocation, token};

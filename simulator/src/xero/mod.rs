//! Xero identity: `/connect/token` (refresh_token and authorization_code grants, rotation with
//! a grace period), `/connect/authorize` (auto-consent), `/connect/revocation`, and the
//! `/connections` endpoints of api.xero.com.

mod authorize;
mod connections;
mod response;
mod token;

pub use authorize::authorize;
pub use connections::{connections, delete_connection};
pub use response::{problem, token_error};
pub use token::{revocation, token};

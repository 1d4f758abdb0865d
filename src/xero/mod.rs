//! Xero: the refresh-token exchange, refresh-token rotation through the Secret, and
//! connections (organisation to tenant).

mod connections;
mod exchange;
mod rotation;

pub use connections::{XeroConnection, XeroConnections, find_organisation};
pub use exchange::{XeroTokenEndpoint, XeroTokens};
pub use rotation::{
    BeforeSecretWrite, EXCHANGE_STARTED_ANNOTATION, ExchangeObserver, ROTATED_AT_ANNOTATION,
    XeroAccessToken, XeroSecretRef, XeroTokenRotation, exchange_unfinished,
};

//! Xero: the refresh-token exchange, refresh-token rotation through the Secret, and
//! the API: connections (organisation to tenant) and the organisation's call allowance.

mod api;
mod exchange;
mod rotation;

pub use api::{XeroAllowance, XeroApi, XeroConnection, find_organisation};
pub use exchange::{XeroTokenEndpoint, XeroTokens};
pub use rotation::{
    BeforeSecretWrite, EXCHANGE_STARTED_ANNOTATION, ExchangeObserver, ROTATED_AT_ANNOTATION,
    XeroAccessToken, XeroSecretRef, XeroTokenRotation, exchange_unfinished,
};

//! The operator's one vocabulary: every condition reason, event reason and metric label is a
//! [`Reason`]. The README's troubleshooting table lists exactly these words (a test keeps them
//! equal); renaming one breaks dashboards, alerts and `kubectl wait` scripts.

use std::fmt;

macro_rules! reasons {
    ($($(#[doc = $doc:literal])+ $variant:ident,)+) => {
        /// Why a condition has its status, why an event was published, what a metric counts.
        /// Each is a stable PascalCase word.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl Reason {
            /// Every reason, in the order of the README's troubleshooting table.
            pub const ALL: &[Reason] = &[$(Reason::$variant,)+];

            /// The stable word: the variant's name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => stringify!($variant),)+
                }
            }
        }
    };
}

reasons! {
    /// Everything is as declared.
    Reconciled,
    /// The operator has not finished its first reconcile of this generation.
    Progressing,
    /// `spec.suspend` is true: the operator changes nothing.
    Suspended,
    /// Power BI's schedule already matched the spec.
    ScheduleInSync,
    /// The operator updated Power BI's schedule to match the spec.
    ScheduleUpdated,
    /// Fresh Xero credentials were applied to the dataset's datasource.
    CredentialsApplied,
    /// The operator started a refresh.
    RefreshTriggered,
    /// A refresh is running (Power BI reports its status as `Unknown`).
    RefreshInProgress,
    /// The latest refresh completed (condition reason).
    RefreshCompleted,
    /// A refresh the operator watched completed (event reason).
    RefreshSucceeded,
    /// The latest refresh failed.
    RefreshFailed,
    /// The dataset has no refresh history yet.
    NoRefreshYet,
    /// `recovery.maxAttemptsPerDay` attempts were made today.
    RecoveryExhausted,
    /// Another refresh would exceed the capacity's daily limit (scheduled ones count).
    DailyLimitReached,
    /// A referenced Secret does not exist in the XeroDataset's namespace.
    SecretNotFound,
    /// A referenced Secret lacks one of the keys the operator needs.
    SecretKeyMissing,
    /// A value in a referenced Secret cannot be the credential it stands for (a tenant or
    /// client id of the wrong shape, white space inside a token, an oversized value).
    SecretValueInvalid,
    /// The operator may not read the XeroDataset's Secrets: their namespace has not opted in
    /// (the chart's `rbac.secretNamespaces`, the `--secret-namespaces` flag) or RBAC refused.
    SecretForbidden,
    /// No dataset in the workspace has the configured id or name.
    DatasetNotFound,
    /// Several datasets in the workspace have the configured name.
    DatasetAmbiguous,
    /// The dataset has no Xero datasource (or none with `spec.dataset.datasourceId`).
    DatasourceNotFound,
    /// The dataset has several Xero datasources and `spec.dataset.datasourceId` is not set.
    DatasourceAmbiguous,
    /// The datasource is on an on-premises gateway whose data source the operator's principal
    /// is not an admin of.
    GatewayAdminRequired,
    /// Power BI refused the Xero credentials the operator set on the datasource.
    CredentialsRejected,
    /// No Xero connection has the configured organisation name.
    OrganisationNotFound,
    /// Several Xero connections have the configured organisation name.
    OrganisationAmbiguous,
    /// Xero rejected the refresh token (expired, revoked or superseded): someone must sign in
    /// again.
    XeroRefreshTokenRejected,
    /// Xero rejected the app's client id or client secret.
    XeroAppRejected,
    /// Xero's identity service or API failed.
    XeroUnavailable,
    /// Xero answered 429: a rate limit of the app or the organisation (`X-Rate-Limit-Problem`).
    XeroThrottled,
    /// Entra ID or Power BI refused the operator's Power BI identity.
    PowerBIUnauthorized,
    /// The operator's Power BI identity may not change the dataset.
    PowerBIForbidden,
    /// Power BI answered 429: the operator waits as long as Retry-After says.
    PowerBIThrottled,
    /// Power BI failed with a server error, a timeout or a malformed answer.
    PowerBIUnavailable,
    /// The Kubernetes API failed while the operator read or wrote a Secret.
    ApiUnavailable,
    /// The spec cannot be acted on (for example an unknown time zone); the message says why.
    InvalidSpec,
}

impl Reason {
    /// The reason named `word`, if it is one of the operator's.
    pub fn parse(word: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.as_str() == word)
    }

    /// Failures that concern the credentials (the CredentialsValid condition shows them).
    pub fn concerns_credentials(self) -> bool {
        matches!(
            self,
            Reason::XeroRefreshTokenRejected
                | Reason::XeroAppRejected
                | Reason::CredentialsRejected
                | Reason::GatewayAdminRequired
                | Reason::SecretNotFound
                | Reason::SecretKeyMissing
                | Reason::SecretValueInvalid
                | Reason::SecretForbidden
                | Reason::PowerBIUnauthorized
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Reason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn every_reason_is_a_distinct_pascal_case_word_that_parses_back() {
        let mut seen = std::collections::BTreeSet::new();
        for reason in Reason::ALL {
            let word = reason.as_str();
            assert!(word.chars().next().is_some_and(|c| c.is_ascii_uppercase()));
            assert!(word.chars().all(|c| c.is_ascii_alphanumeric()), "{word}");
            assert_eq!(format!("{reason:?}"), word);
            assert_eq!(Reason::parse(word), Some(*reason));
            assert!(seen.insert(word), "{word} twice");
        }
        assert_eq!(Reason::parse("Unheard"), None);
    }
}

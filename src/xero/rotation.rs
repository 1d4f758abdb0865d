//! Xero refresh-token rotation that never loses the refresh token.
//!
//! Every exchange returns a new refresh token; the one presented keeps working for 30 minutes
//! (the grace period), then fails with `invalid_grant`. The protocol:
//!
//! 1. read the Secret (refresh token and resourceVersion), and mark it with the time an
//!    exchange starts (a resourceVersion-checked write);
//! 2. exchange the refresh token at Xero;
//! 3. write the new refresh token, and the rotation time, into the Secret with a resourceVersion
//!    precondition;
//! 4. only then hand out the access token.
//!
//! A crash or a failed write between 2 and 3 leaves the presented token in the Secret, and it
//! still works within the grace period, so the next attempt exchanges it again. The mark tells
//! a restarted operator that such an attempt is due now, not at the next slot, which may come
//! after the grace period: an exchange marked later than the last rotation never finished. A write that
//! conflicts re-reads the Secret: if its refresh token is unchanged (another key or a label
//! changed) the same result is written again; if someone wrote a newer refresh token (a new
//! sign-in), rotation continues from that one. Exchanges are single-flight per Secret and the
//! access token is shared by every XeroDataset using the Secret until shortly before it expires.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use reqwest::Url;
use tokio::time::Instant;

use super::exchange::{XeroTokenEndpoint, XeroTokens};
use crate::clock::Clock;
use crate::error::{ClientError, ErrorCategory, Service};
use crate::http::RetryPolicy;
use crate::secret::SecretString;
use crate::secret_store::{SecretAccess, SecretStore, SecretValues, SecretWrite, Shape};

/// The annotation on the Secret holding the time of the last rotation (RFC 3339).
pub const ROTATED_AT_ANNOTATION: &str = "xero-operator.dev/refresh-token-rotated-at";
/// The annotation on the Secret holding the time the last exchange started (RFC 3339).
pub const EXCHANGE_STARTED_ANNOTATION: &str = "xero-operator.dev/refresh-token-exchange-started-at";

/// Whether a Secret's annotations tell of an exchange that started after the last rotation was
/// stored: the new refresh token may be lost unless the stored one is exchanged again within
/// the grace period.
pub fn exchange_unfinished(
    annotations: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    let time = |key: &str| {
        annotations
            .and_then(|a| a.get(key))
            .and_then(|t| t.parse::<Timestamp>().ok())
    };
    match (
        time(EXCHANGE_STARTED_ANNOTATION),
        time(ROTATED_AT_ANNOTATION),
    ) {
        (Some(started), Some(rotated)) => started > rotated,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// How many times one rotation re-reads the Secret after a conflicting write or a superseded
/// refresh token before giving up for now.
const MAX_ROUNDS: u32 = 4;
/// A cached access token is never handed out with less than this left.
const MIN_REMAINING: Duration = Duration::from_secs(60);

/// The Secret with a Xero app's credentials, and the keys to read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct XeroSecretRef {
    /// Namespace of the Secret (the XeroDataset's).
    pub namespace: String,
    /// Name of the Secret.
    pub name: String,
    /// Key of the app's client id.
    pub client_id_key: String,
    /// Key of the app's client secret.
    pub client_secret_key: String,
    /// Key of the refresh token, which the rotation rewrites.
    pub refresh_token_key: String,
}

impl XeroSecretRef {
    /// The Secret `namespace/name` with the default keys `clientId`, `clientSecret` and
    /// `refreshToken`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            client_id_key: "clientId".to_owned(),
            client_secret_key: "clientSecret".to_owned(),
            refresh_token_key: "refreshToken".to_owned(),
        }
    }
}

impl fmt::Display for XeroSecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A Xero access token whose refresh token is safely stored.
#[derive(Debug, Clone)]
pub struct XeroAccessToken {
    /// The bearer token for Xero (and for Power BI's OAuth2 data source credentials).
    pub access_token: SecretString,
    /// When it expires.
    pub expires_at: Timestamp,
    /// When the refresh token it came with was written to the Secret.
    pub refresh_token_rotated_at: Timestamp,
    /// Whether this call exchanged it (rather than handing out the cached one).
    pub exchanged: bool,
    renew_at: Instant,
    lifetime: Duration,
    /// The operator's clock, on which the lifetime runs.
    clock: Clock,
    /// The Secret's version (see [`XeroTokenRotation::secret_changed`]) it was issued for.
    epoch: u64,
}

impl XeroAccessToken {
    fn issued(
        tokens: &XeroTokens,
        requested_at: Instant,
        rotated_at: Timestamp,
        clock: Clock,
    ) -> Self {
        let expires_at = rotated_at
            .checked_add(jiff::SignedDuration::try_from(tokens.expires_in).unwrap_or_default())
            .unwrap_or(rotated_at);
        Self {
            access_token: tokens.access_token.clone(),
            expires_at,
            refresh_token_rotated_at: rotated_at,
            exchanged: true,
            renew_at: requested_at + clock.real_duration(tokens.expires_in),
            lifetime: tokens.expires_in,
            clock,
            epoch: 0,
        }
    }

    /// Whether the token is good for at least `min_validity` more (capped at four fifths of
    /// its lifetime, so that asking too much cannot turn every call into an exchange).
    fn lasts(&self, min_validity: Duration) -> bool {
        let wanted = min_validity
            .min(self.lifetime.mul_f64(0.8))
            .max(MIN_REMAINING);
        Instant::now() + self.clock.real_duration(wanted) <= self.renew_at
    }
}

/// Called after Xero answered an exchange and before the new refresh token is written: the
/// crash window. Production code sets none; tests use it to abort the task or to change the
/// Secret at exactly that point.
pub type BeforeSecretWrite = Arc<dyn Fn(&XeroSecretRef) -> BoxFuture<'static, ()> + Send + Sync>;

/// The values an exchange uses, to recognise a Secret that has not changed since Xero
/// rejected them (kept in memory only).
#[derive(Clone, PartialEq, Eq)]
struct AppCredentials {
    client_id: SecretString,
    client_secret: SecretString,
    refresh_token: SecretString,
}

impl AppCredentials {
    fn read(values: &SecretValues, secret: &XeroSecretRef) -> Result<Self, ClientError> {
        Ok(Self {
            client_id: values
                .shaped(&secret.client_id_key, Shape::Alphanumeric)?
                .clone(),
            client_secret: values
                .shaped(&secret.client_secret_key, Shape::Opaque)?
                .clone(),
            refresh_token: values
                .shaped(&secret.refresh_token_key, Shape::Opaque)?
                .clone(),
        })
    }
}

/// Xero's refusal of some credentials, remembered so that they are not presented again until
/// the Secret changes.
struct Rejection {
    credentials: AppCredentials,
    error: ClientError,
}

/// What the rotation knows of a Secret's versions.
#[derive(Default)]
struct SecretVersion {
    /// The resourceVersions after the rotation's last writes (the mark and the rotation).
    written: std::collections::VecDeque<String>,
    /// The annotation value (rotation or exchange start time) of a write under way.
    writing: Option<String>,
    /// Counts changes by someone else.
    epoch: u64,
}

/// The state of one Secret; its lock makes exchanges single-flight.
#[derive(Default)]
struct SecretState {
    access: Option<XeroAccessToken>,
    rejection: Option<Rejection>,
}

enum Exchanged {
    Tokens(XeroTokens),
    /// Xero rejected the token but the Secret now holds another one: try that.
    Superseded,
}

/// Told the outcome of every exchange with Xero: `Rotated`, or the error category.
pub type ExchangeObserver = Arc<dyn Fn(&str) + Send + Sync>;

/// Rotates Xero refresh tokens stored in Secrets and hands out their access tokens.
pub struct XeroTokenRotation<S = SecretStore> {
    endpoint: XeroTokenEndpoint,
    secrets: S,
    states: Mutex<HashMap<XeroSecretRef, Arc<tokio::sync::Mutex<SecretState>>>>,
    /// Per Secret (namespace, name): the resourceVersion of the rotation's own last write, and
    /// how many times someone else changed it. A cached access token serves only the version
    /// it was issued for: after a new sign-in the next call exchanges the new refresh token.
    versions: Mutex<HashMap<(String, String), SecretVersion>>,
    before_secret_write: Option<BeforeSecretWrite>,
    exchange_observer: Option<ExchangeObserver>,
    /// The operator's clock, on which access token lifetimes run.
    clock: Clock,
}

impl<S: SecretAccess> XeroTokenRotation<S> {
    /// Rotation against the identity service at `identity_url`, storing tokens through
    /// `secrets`.
    pub fn new(
        http: reqwest::Client,
        identity_url: &Url,
        retry: RetryPolicy,
        secrets: S,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            endpoint: XeroTokenEndpoint::new(http, identity_url, retry)?,
            secrets,
            states: Mutex::new(HashMap::new()),
            versions: Mutex::new(HashMap::new()),
            before_secret_write: None,
            exchange_observer: None,
            clock: Clock::real(),
        })
    }

    /// Lets access token lifetimes run on `clock`: a benchmark's faster clock ends them sooner.
    pub fn on_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the observer of exchange outcomes (the operator counts them in a metric).
    pub fn with_exchange_observer(mut self, observer: ExchangeObserver) -> Self {
        self.exchange_observer = Some(observer);
        self
    }

    /// Sets the hook called between Xero's answer and the Secret write.
    pub fn with_before_secret_write(mut self, hook: BeforeSecretWrite) -> Self {
        self.before_secret_write = Some(hook);
        self
    }

    /// A Xero access token for the app and user in `secret`, good for at least
    /// `min_validity` (capped at four fifths of the token's lifetime): the shared cached one, or
    /// a new one from a rotation.
    ///
    /// Errors: `SecretNotFound` / `SecretKeyMissing`; `XeroRefreshTokenRejected` (also without
    /// asking Xero again, while the Secret holds the same credentials Xero rejected);
    /// `XeroClientRejected`; `Conflict` when the Secret kept changing; the transport
    /// categories.
    pub async fn access_token(
        &self,
        secret: &XeroSecretRef,
        min_validity: Duration,
    ) -> Result<XeroAccessToken, ClientError> {
        let state = self.state(secret);
        // Held across the exchange and the write: concurrent callers for this Secret wait and
        // then share the result.
        let mut state = state.lock().await;
        let epoch = self.epoch(secret);
        if let Some(token) = state
            .access
            .as_ref()
            .filter(|token| token.epoch == epoch && token.lasts(min_validity))
        {
            return Ok(XeroAccessToken {
                exchanged: false,
                ..token.clone()
            });
        }
        state.access = None;
        let mut token = self.rotate(secret, &mut state).await?;
        token.epoch = epoch;
        state.access = Some(token.clone());
        Ok(token)
    }

    /// Tells the rotation that the Secret `namespace/name` now has `resource_version` and the
    /// rotation-time annotation `rotated_at`. Returns true when someone else changed it (a new
    /// sign-in, an edit): the access tokens cached from it are then no longer handed out. The
    /// rotation's own writes return false: the version its write returned, or, while the write's
    /// answer is still on its way, the rotation time it wrote.
    pub fn secret_changed(
        &self,
        namespace: &str,
        name: &str,
        resource_version: &str,
        marks: [Option<&str>; 2],
    ) -> bool {
        let mut versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        let version = versions
            .entry((namespace.to_owned(), name.to_owned()))
            .or_default();
        let own = version.written.iter().any(|v| v == resource_version)
            || (version.writing.is_some() && marks.contains(&version.writing.as_deref()));
        if !own {
            version.epoch += 1;
        }
        !own
    }

    fn epoch(&self, secret: &XeroSecretRef) -> u64 {
        let versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        versions
            .get(&(secret.namespace.clone(), secret.name.clone()))
            .map_or(0, |v| v.epoch)
    }

    /// Records that the rotation is about to write the Secret with the rotation time `rotated_at`.
    fn writing(&self, secret: &XeroSecretRef, rotated_at: &str) {
        self.with_version(secret, |v| v.writing = Some(rotated_at.to_owned()));
    }

    /// Records the end of the rotation's write: the version it returned, if it succeeded.
    fn wrote(&self, secret: &XeroSecretRef, resource_version: Option<String>) {
        self.with_version(secret, |v| {
            v.writing = None;
            if let Some(written) = resource_version {
                if v.written.len() >= 4 {
                    v.written.pop_front();
                }
                v.written.push_back(written);
            }
        });
    }

    /// Marks the Secret with the time an exchange starts, if it is still at the version read;
    /// returns the version the mark wrote.
    async fn mark_exchange(
        &self,
        secret: &XeroSecretRef,
        values: &SecretValues,
    ) -> Result<String, ClientError> {
        let started_at = Timestamp::now().to_string();
        self.writing(secret, &started_at);
        let write = SecretWrite {
            resource_version: values.resource_version(),
            data: Vec::new(),
            annotations: vec![(EXCHANGE_STARTED_ANNOTATION, started_at)],
        };
        let marked = self
            .secrets
            .write(&secret.namespace, &secret.name, write)
            .await;
        self.wrote(secret, marked.as_ref().ok().cloned());
        marked
    }

    fn with_version(&self, secret: &XeroSecretRef, change: impl FnOnce(&mut SecretVersion)) {
        let mut versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        change(
            versions
                .entry((secret.namespace.clone(), secret.name.clone()))
                .or_default(),
        );
    }

    /// Forgets the cached access token of `secret`, for example after Xero answered 401 to it;
    /// the next [`XeroTokenRotation::access_token`] rotates.
    pub async fn forget(&self, secret: &XeroSecretRef) {
        self.state(secret).lock().await.access = None;
    }

    fn state(&self, secret: &XeroSecretRef) -> Arc<tokio::sync::Mutex<SecretState>> {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        if !states.contains_key(secret) {
            // Secrets whose access token expired and that remember no rejection are forgotten
            // when another one comes: deleted or unused Secrets do not pile up.
            let now = Instant::now();
            states.retain(|_, state| {
                state.try_lock().map_or(true, |state| {
                    state.rejection.is_some()
                        || state.access.as_ref().is_some_and(|t| now < t.renew_at)
                })
            });
        }
        states.entry(secret.clone()).or_default().clone()
    }

    async fn rotate(
        &self,
        secret: &XeroSecretRef,
        state: &mut SecretState,
    ) -> Result<XeroAccessToken, ClientError> {
        // Tokens whose write conflicted, with the refresh token they replace.
        let mut unwritten: Option<(SecretString, XeroTokens, Instant)> = None;
        for _ in 0..MAX_ROUNDS {
            let values = self.secrets.read(&secret.namespace, &secret.name).await?;
            // The version the rotation's write expects: the one read, or the one its mark wrote.
            let mut precondition = None;
            let credentials = AppCredentials::read(&values, secret)?;
            let (tokens, requested_at) = match unwritten.take() {
                Some((presented, tokens, requested_at))
                    if presented == credentials.refresh_token =>
                {
                    (tokens, requested_at)
                }
                _ => {
                    // Credentials Xero rejected are not presented again (nor is the Secret
                    // marked for them) until the Secret changes.
                    if let Some(rejection) = &state.rejection
                        && rejection.credentials == credentials
                    {
                        return Err(rejection.error.clone());
                    }
                    match self.mark_exchange(secret, &values).await {
                        Ok(marked) => precondition = Some(marked),
                        Err(error) if error.category() == ErrorCategory::Conflict => continue,
                        Err(error) => return Err(error),
                    }
                    let requested_at = Instant::now();
                    match self.exchange(secret, state, &credentials).await? {
                        Exchanged::Tokens(tokens) => (tokens, requested_at),
                        Exchanged::Superseded => continue,
                    }
                }
            };
            if let Some(hook) = &self.before_secret_write {
                hook(secret).await;
            }
            let rotated_at = Timestamp::now();
            self.writing(secret, &rotated_at.to_string());
            let write = SecretWrite {
                resource_version: precondition.as_deref().unwrap_or(values.resource_version()),
                data: vec![(secret.refresh_token_key.as_str(), &tokens.refresh_token)],
                annotations: vec![(ROTATED_AT_ANNOTATION, rotated_at.to_string())],
            };
            let written = self
                .secrets
                .write(&secret.namespace, &secret.name, write)
                .await;
            self.wrote(secret, written.as_ref().ok().cloned());
            match written {
                Ok(_) => {
                    tracing::info!(secret = %secret, %rotated_at, "rotated the Xero refresh token");
                    return Ok(XeroAccessToken::issued(
                        &tokens,
                        requested_at,
                        rotated_at,
                        self.clock,
                    ));
                }
                Err(error) if error.category() == ErrorCategory::Conflict => {
                    tracing::debug!(secret = %secret, "the Secret changed during the rotation; reading it again");
                    unwritten = Some((credentials.refresh_token, tokens, requested_at));
                }
                // The access token is dropped: the refresh token it came with is not stored,
                // and the presented one still works within the grace period.
                Err(error) => return Err(error),
            }
        }
        Err(ClientError::new(
            Service::Kubernetes,
            ErrorCategory::Conflict,
            format!("Secret {secret} kept changing while the Xero refresh token was rotated"),
        ))
    }

    async fn exchange(
        &self,
        secret: &XeroSecretRef,
        state: &mut SecretState,
        credentials: &AppCredentials,
    ) -> Result<Exchanged, ClientError> {
        // The caller has checked that these credentials were not rejected before.
        state.rejection = None;
        let error = match self
            .endpoint
            .exchange(
                credentials.client_id.expose(),
                &credentials.client_secret,
                &credentials.refresh_token,
            )
            .await
        {
            Ok(tokens) => {
                if let Some(observe) = &self.exchange_observer {
                    observe("Rotated");
                }
                return Ok(Exchanged::Tokens(tokens));
            }
            Err(error) => {
                if let Some(observe) = &self.exchange_observer {
                    observe(error.category().as_str());
                }
                error
            }
        };
        match error.category() {
            ErrorCategory::XeroRefreshTokenRejected | ErrorCategory::XeroClientRejected => {
                // A sign-in or another writer may have stored a newer refresh token since the
                // Secret was read; that one deserves a try before giving up.
                let latest = self.secrets.read(&secret.namespace, &secret.name).await?;
                if AppCredentials::read(&latest, secret)? != *credentials {
                    return Ok(Exchanged::Superseded);
                }
                tracing::warn!(secret = %secret, reason = error.category().as_str(), "Xero rejected the credentials in the Secret");
                state.rejection = Some(Rejection {
                    credentials: credentials.clone(),
                    error: error.clone(),
                });
                Err(error)
            }
            _ => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secrets that cannot be read: enough for tests of the rotation's own bookkeeping.
    struct NoSecrets;

    impl SecretAccess for NoSecrets {
        async fn read(&self, namespace: &str, name: &str) -> Result<SecretValues, ClientError> {
            Err(ClientError::new(
                Service::Kubernetes,
                ErrorCategory::SecretNotFound,
                format!("{namespace}/{name}"),
            ))
        }

        async fn write(
            &self,
            namespace: &str,
            name: &str,
            _write: SecretWrite<'_>,
        ) -> Result<String, ClientError> {
            self.read(namespace, name).await.map(|_| String::new())
        }
    }

    #[tokio::test]
    async fn secrets_with_nothing_to_remember_are_forgotten_when_another_comes() {
        crate::telemetry::install_crypto_provider();
        let rotation = XeroTokenRotation::new(
            reqwest::Client::new(),
            &Url::parse("http://127.0.0.1:9/").expect("url"),
            RetryPolicy::default(),
            NoSecrets,
        )
        .expect("rotation");
        let secret = |name: &str| XeroSecretRef::new("ns", name);
        rotation.state(&secret("expired")).lock().await.access = Some(issued(0));
        rotation.state(&secret("valid")).lock().await.access = Some(issued(600));
        rotation.state(&secret("rejected")).lock().await.rejection = Some(Rejection {
            credentials: AppCredentials {
                client_id: SecretString::new("c"),
                client_secret: SecretString::new("s"),
                refresh_token: SecretString::new("r"),
            },
            error: ClientError::new(
                Service::XeroIdentity,
                ErrorCategory::XeroRefreshTokenRejected,
                "no",
            ),
        });
        rotation.state(&secret("new"));
        let states = rotation.states.lock().expect("lock");
        assert!(!states.contains_key(&secret("expired")));
        for kept in ["valid", "rejected", "new"] {
            assert!(states.contains_key(&secret(kept)), "{kept}");
        }
    }

    #[test]
    fn an_exchange_marked_after_the_last_rotation_is_unfinished() {
        let annotations = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let (started, rotated) = (EXCHANGE_STARTED_ANNOTATION, ROTATED_AT_ANNOTATION);
        let unfinished = annotations(&[
            (started, "2026-12-03T10:00:01Z"),
            (rotated, "2026-12-03T10:00:00Z"),
        ]);
        assert!(exchange_unfinished(Some(&unfinished)));
        let finished = annotations(&[
            (started, "2026-12-03T10:00:00Z"),
            (rotated, "2026-12-03T10:00:00.2Z"),
        ]);
        assert!(!exchange_unfinished(Some(&finished)));
        assert!(exchange_unfinished(Some(&annotations(&[(
            started,
            "2026-12-03T10:00:00Z"
        )]))));
        assert!(!exchange_unfinished(Some(&annotations(&[(
            rotated,
            "2026-12-03T10:00:00Z"
        )]))));
        assert!(!exchange_unfinished(None));
        // A mark that is not a time is not trusted to mean anything.
        assert!(!exchange_unfinished(Some(&annotations(&[(
            started, "soon"
        )]))));
    }

    fn issued(lifetime_secs: u64) -> XeroAccessToken {
        let tokens = XeroTokens {
            access_token: SecretString::new("access"),
            refresh_token: SecretString::new("refresh"),
            expires_in: Duration::from_secs(lifetime_secs),
        };
        XeroAccessToken::issued(
            &tokens,
            Instant::now(),
            Timestamp::UNIX_EPOCH,
            Clock::real(),
        )
    }

    #[test]
    fn a_fresh_token_serves_any_reasonable_validity_and_asking_too_much_is_capped() {
        let token = issued(1800);
        assert_eq!(token.expires_at.as_second(), 1800);
        assert!(token.lasts(Duration::ZERO));
        assert!(token.lasts(Duration::from_secs(25 * 60)));
        // More than the lifetime would turn every call into an exchange: capped at 24 minutes.
        assert!(token.lasts(Duration::from_secs(3600)));
    }

    #[test]
    fn a_token_about_to_expire_is_not_handed_out() {
        assert!(!issued(30).lasts(Duration::ZERO));
    }

    #[test]
    fn a_token_lifetime_runs_on_the_operators_clock() {
        let tokens = XeroTokens {
            access_token: SecretString::new("access"),
            refresh_token: SecretString::new("refresh"),
            expires_in: Duration::from_secs(1800),
        };
        // 20 real seconds ago, on a clock 60 times faster: 20 of its 30 minutes are gone.
        let requested = Instant::now()
            .checked_sub(Duration::from_secs(20))
            .expect("an instant 20 s ago");
        let fast = Clock::scaled(Timestamp::UNIX_EPOCH, 60.0);
        let token = XeroAccessToken::issued(&tokens, requested, Timestamp::UNIX_EPOCH, fast);
        assert!(token.lasts(Duration::from_secs(5 * 60)));
        assert!(!token.lasts(Duration::from_secs(15 * 60)));
        let real =
            XeroAccessToken::issued(&tokens, requested, Timestamp::UNIX_EPOCH, Clock::real());
        assert!(real.lasts(Duration::from_secs(15 * 60)));
    }

    #[test]
    fn debug_output_hides_the_token() {
        let debug = format!("{:?}", issued(1800));
        assert!(!debug.contains("access\""), "{debug}");
        assert!(debug.contains("<redacted>"));
    }
}

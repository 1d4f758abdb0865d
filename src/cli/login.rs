//! `xero-operator xero-login`: the first sign-in to Xero (the step of the manual fix only a
//! person can do).
//!
//! Xero's authorization-code flow with PKCE: the command prints the authorize URL, a person
//! signs in and consents in a browser, Xero redirects the browser to a callback on this
//! machine's loopback interface, and the command exchanges the code (with the PKCE verifier)
//! for tokens. It then writes the app's client id and secret and the refresh token to the Secret
//! a XeroDataset references, creating the Secret or patching only those keys.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use reqwest::Url;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::{CliError, FIELD_MANAGER, connect};
use crate::endpoints::{XERO_API_URL, XERO_IDENTITY_URL, join, service_url};
use crate::error::{ClientError, ErrorCategory, Service};
use crate::http::{Call, HttpSettings, OAuthHttp, RetryPolicy, http_client, token_error};
use crate::secret::SecretString;
use crate::xero::XeroApi;

/// Xero's login host; the authorize endpoint is `{login}/identity/connect/authorize`.
pub const XERO_LOGIN_URL: &str = "https://login.xero.com/";

/// The read-only scopes a Power BI dataset on Xero needs, in the granular form Xero requires of
/// apps created since 2 March 2026 (older apps may use them too). `offline_access` makes Xero
/// return a refresh token.
pub const DEFAULT_SCOPES: &[&str] = &[
    "offline_access",
    "accounting.settings.read",
    "accounting.contacts.read",
    "accounting.invoices.read",
    "accounting.payments.read",
    "accounting.banktransactions.read",
    "accounting.manualjournals.read",
];

/// Secret keys written, as `spec.xero.credentialsSecretRef` names them by default.
const CLIENT_ID_KEY: &str = "clientId";
const CLIENT_SECRET_KEY: &str = "clientSecret";
const REFRESH_TOKEN_KEY: &str = "refreshToken";

const CALL: Call = Call {
    service: Service::XeroIdentity,
    operation: "AuthorizationCode",
    // A code is good for one exchange only.
    idempotent: false,
};

/// Flags of `xero-operator xero-login`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// The Secret to create or update with the keys clientId, clientSecret and refreshToken
    /// (other keys stay as they are).
    #[arg(long)]
    pub secret: String,
    /// Namespace of the Secret. Default: the kubeconfig context's namespace, else `default`.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// The Xero app's client id. Default: the Secret's clientId.
    #[arg(long, env = "XERO_CLIENT_ID")]
    pub client_id: Option<String>,
    /// The Xero app's client secret. Default: the Secret's clientSecret. Prefer the environment
    /// variable: a flag shows in the process list.
    #[arg(long, env = "XERO_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<SecretString>,
    /// Scopes to request, separated by commas or spaces; offline_access is always added.
    #[arg(long, value_delimiter = ',', default_values = DEFAULT_SCOPES)]
    pub scopes: Vec<String>,
    /// Port of the callback on localhost; the Xero app must list
    /// `http://localhost:PORT/callback` among its redirect URIs.
    #[arg(long, default_value_t = 8912)]
    pub redirect_port: u16,
    /// How long to wait for the browser to come back.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Xero identity service base URL (token endpoint at `connect/token`).
    #[arg(long, env = "XERO_OPERATOR_XERO_IDENTITY_URL", value_parser = parse_url)]
    pub xero_identity_url: Option<Url>,
    /// Xero login base URL (authorize endpoint at `identity/connect/authorize`). Default:
    /// https://login.xero.com/, or the identity URL when that is overridden.
    #[arg(long, env = "XERO_OPERATOR_XERO_LOGIN_URL", value_parser = parse_url)]
    pub xero_login_url: Option<Url>,
    /// Xero API base URL (connections at `connections`), to list the organisations signed in.
    #[arg(long, env = "XERO_OPERATOR_XERO_API_URL", value_parser = parse_url)]
    pub xero_api_url: Option<Url>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::api::duration::parse(text).map_err(|e| e.to_string())
}

fn parse_url(text: &str) -> Result<Url, String> {
    service_url(text).map_err(|e| e.message().to_owned())
}

/// The endpoints of the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginUrls {
    /// The browser's authorize endpoint.
    pub authorize: Url,
    /// The token endpoint.
    pub token: Url,
    /// The connections endpoint.
    pub connections_api: Url,
}

impl LoginUrls {
    /// Resolves the URLs from the flags and Xero's defaults.
    pub fn resolve(args: &LoginArgs) -> Result<Self, ClientError> {
        let identity = match &args.xero_identity_url {
            Some(url) => url.clone(),
            None => service_url(XERO_IDENTITY_URL)?,
        };
        let login = match (&args.xero_login_url, &args.xero_identity_url) {
            (Some(url), _) => url.clone(),
            // A proxy or the simulator serves both at one address.
            (None, Some(identity)) => identity.clone(),
            (None, None) => service_url(XERO_LOGIN_URL)?,
        };
        Ok(Self {
            authorize: join(&login, &["identity", "connect", "authorize"])?,
            token: join(&identity, &["connect", "token"])?,
            connections_api: match &args.xero_api_url {
                Some(url) => url.clone(),
                None => service_url(XERO_API_URL)?,
            },
        })
    }
}

/// The scopes to request: the given ones split on commas and spaces, deduplicated, with
/// `offline_access` first (without it Xero returns no refresh token).
pub fn requested_scopes(given: &[String]) -> Vec<String> {
    let mut scopes = vec!["offline_access".to_owned()];
    for scope in given.iter().flat_map(|s| s.split([',', ' '])) {
        let scope = scope.trim();
        if !scope.is_empty() && !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    scopes
}

/// The Xero app signing in.
struct XeroApp {
    client_id: String,
    client_secret: SecretString,
}

impl XeroApp {
    /// From the flags, else from the existing Secret.
    fn resolve(
        args: &LoginArgs,
        existing: Option<&Secret>,
        where_: &str,
    ) -> Result<Self, CliError> {
        let stored = |key: &str| {
            existing
                .and_then(|s| s.data.as_ref())
                .and_then(|data| data.get(key))
                .and_then(|ByteString(bytes)| String::from_utf8(bytes.clone()).ok())
                .filter(|value| !value.trim().is_empty())
        };
        let client_id = args
            .client_id
            .clone()
            .filter(|id| !id.trim().is_empty())
            .or_else(|| stored(CLIENT_ID_KEY));
        let client_secret = args
            .client_secret
            .clone()
            .filter(|secret| !secret.expose().trim().is_empty())
            .or_else(|| stored(CLIENT_SECRET_KEY).map(SecretString::new));
        match (client_id, client_secret) {
            (Some(client_id), Some(client_secret)) => Ok(Self {
                client_id: client_id.trim().to_owned(),
                client_secret: SecretString::new(client_secret.expose().trim()),
            }),
            (id, _) => {
                let missing = if id.is_none() {
                    "client id"
                } else {
                    "client secret"
                };
                Err(CliError::Usage(format!(
                    "no Xero app {missing}: pass --client-id and --client-secret (or set \
                     XERO_CLIENT_ID and XERO_CLIENT_SECRET), or store them in Secret {where_} \
                     under {CLIENT_ID_KEY} and {CLIENT_SECRET_KEY}"
                )))
            }
        }
    }
}

/// Runs the sign-in and writes the Secret.
pub async fn xero_login(args: LoginArgs) -> Result<(), CliError> {
    let urls = LoginUrls::resolve(&args)?;
    let (client, namespace) = connect(args.namespace.as_deref()).await?;
    let where_ = format!("{namespace}/{}", args.secret);
    let secrets: Api<Secret> = Api::namespaced(client, &namespace);
    let existing = secrets
        .get_opt(&args.secret)
        .await
        .map_err(|e| CliError::kubernetes(format!("read Secret {where_}"), e))?;
    let app = XeroApp::resolve(&args, existing.as_ref(), &where_)?;

    let callback = CallbackListener::bind(args.redirect_port).await?;
    let redirect_uri = format!("http://localhost:{}/callback", callback.port);
    let oauth = BasicClient::new(ClientId::new(app.client_id.clone()))
        .set_client_secret(ClientSecret::new(app.client_secret.expose().to_owned()))
        .set_auth_type(AuthType::BasicAuth)
        .set_auth_uri(AuthUrl::from_url(urls.authorize.clone()))
        .set_token_uri(TokenUrl::from_url(urls.token.clone()))
        .set_redirect_uri(
            RedirectUrl::new(redirect_uri.clone())
                .map_err(|e| CliError::Login(format!("bad redirect URI {redirect_uri}: {e}")))?,
        );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scopes(requested_scopes(&args.scopes).into_iter().map(Scope::new))
        .set_pkce_challenge(challenge)
        .url();

    let mut out = std::io::stdout();
    prompt(
        &mut out,
        &redirect_uri,
        authorize_url.as_str(),
        args.timeout,
    );

    let code = callback
        .wait_for_code(state.secret().to_owned(), args.timeout)
        .await?;

    let http = http_client(&HttpSettings::default())?;
    let retry = RetryPolicy::default();
    let oauth_http = OAuthHttp {
        client: &http,
        policy: &retry,
        call: CALL,
    };
    let tokens = oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&oauth_http)
        .await
        .map_err(|error| token_error(CALL, error, category_of))?;
    let Some(refresh_token) = tokens.refresh_token() else {
        return Err(CliError::Login(
            "Xero returned no refresh token; the offline_access scope must be granted".into(),
        ));
    };
    let values = [
        (CLIENT_ID_KEY, SecretString::new(app.client_id.as_str())),
        (CLIENT_SECRET_KEY, app.client_secret.clone()),
        (
            REFRESH_TOKEN_KEY,
            SecretString::new(refresh_token.secret().as_str()),
        ),
    ];
    let verb = write_secret(&secrets, &args.secret, existing.is_some(), &values)
        .await
        .map_err(|e| CliError::kubernetes(format!("write Secret {where_}"), e))?;
    let access_token = SecretString::new(tokens.access_token().secret().as_str());
    let _ = writeln!(
        out,
        "Signed in to Xero. {verb} Secret {where_} with {CLIENT_ID_KEY}, {CLIENT_SECRET_KEY} and \
         {REFRESH_TOKEN_KEY}."
    );

    report_organisations(&mut out, http, &urls, retry, &access_token).await;
    Ok(())
}

/// Prints the organisations the sign-in reaches: they help to fill in spec.xero.organisation;
/// not knowing them is no failure.
async fn report_organisations(
    out: &mut impl std::io::Write,
    http: reqwest::Client,
    urls: &LoginUrls,
    retry: RetryPolicy,
    access_token: &SecretString,
) {
    match organisations(http, urls, retry, access_token).await {
        Ok(names) => {
            let names = if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            };
            let _ = writeln!(
                out,
                "Organisations connected (spec.xero.organisation): {names}"
            );
        }
        Err(error) => eprintln!("warning: cannot list the connected organisations: {error}"),
    }
}

/// Asks the person to sign in. The URL carries no secret: the state and the PKCE challenge are
/// useless without the verifier, which never leaves this process.
fn prompt(
    out: &mut impl std::io::Write,
    redirect_uri: &str,
    authorize_url: &str,
    timeout: Duration,
) {
    let _ = writeln!(
        out,
        "Open this URL in a browser and sign in to Xero (the Xero app must list {redirect_uri} \
         as a redirect URI):\n\n  {authorize_url}\n\nWaiting up to {} for Xero to redirect to \
         {redirect_uri} (Ctrl-C to cancel)...",
        super::short_duration(jiff::SignedDuration::try_from(timeout).unwrap_or_default())
    );
    let _ = out.flush();
}

/// The names of the organisations the new sign-in reaches.
async fn organisations(
    http: reqwest::Client,
    urls: &LoginUrls,
    retry: RetryPolicy,
    access_token: &SecretString,
) -> Result<Vec<String>, ClientError> {
    let connections = XeroApi::new(http, &urls.connections_api, retry)?;
    Ok(connections
        .list(access_token)
        .await?
        .iter()
        .map(|c| c.tenant_name.clone().unwrap_or_else(|| c.tenant_id.clone()))
        .collect())
}

fn category_of(code: &BasicErrorResponseType) -> ErrorCategory {
    match code {
        BasicErrorResponseType::InvalidClient | BasicErrorResponseType::UnauthorizedClient => {
            ErrorCategory::XeroClientRejected
        }
        _ => ErrorCategory::InvalidRequest,
    }
}

/// Creates the Secret, or patches only the given keys of the existing one. Returns what it did.
async fn write_secret(
    secrets: &Api<Secret>,
    name: &str,
    exists: bool,
    values: &[(&str, SecretString)],
) -> Result<&'static str, kube::Error> {
    let data: BTreeMap<String, ByteString> = values
        .iter()
        .map(|(key, value)| {
            (
                (*key).to_owned(),
                ByteString(value.expose().as_bytes().to_vec()),
            )
        })
        .collect();
    if exists {
        let patch = serde_json::json!({ "data": data });
        secrets
            .patch(
                name,
                &PatchParams {
                    field_manager: Some(FIELD_MANAGER.to_owned()),
                    ..PatchParams::default()
                },
                &Patch::Merge(&patch),
            )
            .await?;
        Ok("Updated")
    } else {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            type_: Some("Opaque".to_owned()),
            data: Some(data),
            ..Default::default()
        };
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        secrets.create(&params, &secret).await?;
        Ok("Created")
    }
}

/// What the browser brought back to the callback.
type CallbackResult = Result<String, String>;

/// The loopback HTTP server that receives Xero's redirect.
struct CallbackListener {
    port: u16,
    listeners: Vec<TcpListener>,
}

impl CallbackListener {
    /// Listens on `127.0.0.1:port` and, when available, `[::1]:port` (a browser may resolve
    /// `localhost` to either). Never on other interfaces: the code is a credential.
    async fn bind(port: u16) -> Result<Self, CliError> {
        let v4 = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await
            .map_err(|e| {
                CliError::Login(format!(
                    "cannot listen on 127.0.0.1:{port} for Xero's redirect: {e}; pick another \
                     --redirect-port (the Xero app must list it as a redirect URI)"
                ))
            })?;
        let port = v4
            .local_addr()
            .map_err(|e| CliError::Login(format!("cannot read the callback address: {e}")))?
            .port();
        let mut listeners = vec![v4];
        match TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))).await {
            Ok(v6) => listeners.push(v6),
            // Another program on [::1]:port would receive the code from a browser that resolves
            // localhost to ::1.
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(CliError::Login(format!(
                    "[::1]:{port} is taken by another program, which a browser could send Xero's \
                     redirect to; pick another --redirect-port (the Xero app must list it as a \
                     redirect URI)"
                )));
            }
            // No IPv6 loopback on this machine: 127.0.0.1 alone serves.
            Err(_) => {}
        }
        Ok(Self { port, listeners })
    }

    /// Serves `/callback` until the first redirect arrives, and returns its code once its state
    /// matches `expected_state`.
    async fn wait_for_code(
        self,
        expected_state: String,
        timeout: Duration,
    ) -> Result<String, CliError> {
        let (sender, mut received) = mpsc::channel::<CallbackResult>(1);
        let router = axum::Router::new()
            .route("/callback", axum::routing::get(callback))
            .with_state(CallbackState {
                expected_state,
                sender,
            });
        let (stop, stopped) = oneshot::channel::<()>();
        let stopped = futures::FutureExt::shared(async move {
            let _ = stopped.await;
        });
        let mut servers: Vec<_> = self
            .listeners
            .into_iter()
            .map(|listener| {
                let stopped = stopped.clone();
                let router = router.clone();
                tokio::spawn(async move {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(stopped)
                        .await
                })
            })
            .collect();
        let outcome = tokio::select! {
            result = received.recv() => match result {
                Some(Ok(code)) => Ok(code),
                Some(Err(reason)) => Err(CliError::Login(reason)),
                None => Err(CliError::Login("the callback server stopped".into())),
            },
            () = tokio::time::sleep(timeout) => Err(CliError::Timeout {
                waited: super::short_duration(
                    jiff::SignedDuration::try_from(timeout).unwrap_or_default(),
                ),
                what: "no redirect from Xero reached the callback; was the URL opened and the \
                       sign-in completed?"
                    .into(),
            }),
            _ = tokio::signal::ctrl_c() => Err(CliError::Login("cancelled".into())),
        };
        // The browser may keep its connection open: give the servers a moment to finish the
        // page they are sending, then stop them.
        let _ = stop.send(());
        let finished = futures::future::join_all(servers.iter_mut());
        if tokio::time::timeout(Duration::from_secs(2), finished)
            .await
            .is_err()
        {
            for server in &servers {
                server.abort();
            }
        }
        outcome
    }
}

#[derive(Clone)]
struct CallbackState {
    expected_state: String,
    sender: mpsc::Sender<CallbackResult>,
}

async fn callback(
    State(state): State<CallbackState>,
    Query(params): Query<HashMap<String, String>>,
) -> (StatusCode, Html<&'static str>) {
    let (status, page, result) = judge_callback(&state.expected_state, &params);
    // Only Xero's redirect (it carries the state sent) ends the wait: any other request to the
    // callback, which a web page open in the browser can make, is refused and ignored. Only the
    // first redirect counts; later ones (a reload) find the channel full or closed.
    if let Some(result) = result {
        let _ = state.sender.try_send(result);
    }
    (status, Html(page))
}

/// Checks a redirect: the state must be the one sent (else it may be forged), and Xero must
/// have sent a code rather than an error.
/// A request without the state sent is not Xero's redirect: it gets no result.
fn judge_callback(
    expected_state: &str,
    params: &HashMap<String, String>,
) -> (StatusCode, &'static str, Option<CallbackResult>) {
    const FAILED: &str = "<h1>Xero sign-in failed</h1><p>See the terminal for the reason.</p>";
    if params.get("state").map(String::as_str) != Some(expected_state) {
        tracing::warn!("a request to the callback without the state sent to Xero was refused");
        return (
            StatusCode::BAD_REQUEST,
            "<h1>Not a Xero sign-in</h1><p>This request does not carry the state sent to Xero.</p>",
            None,
        );
    }
    if let Some(error) = params.get("error") {
        // Xero's error codes are fixed words; keep only such characters in the message.
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return (
            StatusCode::BAD_REQUEST,
            FAILED,
            Some(Err(format!("Xero refused the sign-in: {error}"))),
        );
    }
    match params.get("code").filter(|code| !code.is_empty()) {
        Some(code) => (
            StatusCode::OK,
            "<h1>Signed in to Xero</h1><p>You can close this tab and return to the terminal.</p>",
            Some(Ok(code.clone())),
        ),
        None => (
            StatusCode::BAD_REQUEST,
            FAILED,
            Some(Err(
                "Xero's redirect carried neither a code nor an error".into()
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        login: LoginArgs,
    }

    fn args(extra: &[&str]) -> LoginArgs {
        let mut argv = vec!["xero-login", "--secret", "xero-app"];
        argv.extend_from_slice(extra);
        Command::try_parse_from(argv).unwrap().login
    }

    #[test]
    fn default_urls_are_xeros() {
        let urls = LoginUrls::resolve(&args(&[])).unwrap();
        assert_eq!(
            urls.authorize.as_str(),
            "https://login.xero.com/identity/connect/authorize"
        );
        assert_eq!(
            urls.token.as_str(),
            "https://identity.xero.com/connect/token"
        );
    }

    #[test]
    fn an_identity_override_also_serves_the_authorize_endpoint() {
        let urls =
            LoginUrls::resolve(&args(&["--xero-identity-url", "http://127.0.0.1:4000"])).unwrap();
        assert_eq!(
            urls.authorize.as_str(),
            "http://127.0.0.1:4000/identity/connect/authorize"
        );
        assert_eq!(urls.token.as_str(), "http://127.0.0.1:4000/connect/token");
        let urls = LoginUrls::resolve(&args(&[
            "--xero-identity-url",
            "http://127.0.0.1:4000",
            "--xero-login-url",
            "https://login.example.com/",
        ]))
        .unwrap();
        assert_eq!(
            urls.authorize.as_str(),
            "https://login.example.com/identity/connect/authorize"
        );
    }

    #[test]
    fn plain_http_to_another_host_is_refused() {
        let error = Command::try_parse_from([
            "xero-login",
            "--secret",
            "s",
            "--xero-identity-url",
            "http://identity.example.com",
        ])
        .err()
        .unwrap();
        assert!(error.to_string().contains("not loopback"), "{error}");
    }

    #[test]
    fn offline_access_is_always_requested_first() {
        assert_eq!(
            requested_scopes(&["accounting.settings.read openid".into(), "openid".into()]),
            ["offline_access", "accounting.settings.read", "openid"]
        );
        assert_eq!(
            requested_scopes(&args(&[]).scopes),
            DEFAULT_SCOPES
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_app_comes_from_flags_before_the_secret() {
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "xero-app"},
            "data": {"clientId": "c3RvcmVkLWlk", "clientSecret": "c3RvcmVkLXNlY3JldA=="},
        }))
        .unwrap();
        let app = XeroApp::resolve(&args(&[]), Some(&secret), "ns/xero-app").unwrap();
        assert_eq!(app.client_id, "stored-id");
        assert_eq!(app.client_secret.expose(), "stored-secret");
        let app =
            XeroApp::resolve(&args(&["--client-id", "flag-id"]), Some(&secret), "ns/x").unwrap();
        assert_eq!(app.client_id, "flag-id");
        assert_eq!(app.client_secret.expose(), "stored-secret");
        let error = XeroApp::resolve(&args(&["--client-id", "id"]), None, "ns/xero-app")
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("no Xero app client secret"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_callback_port_taken_on_the_ipv6_loopback_is_refused() {
        // A program on [::1]:port would get the code from a browser resolving localhost to ::1.
        // The same port number on 127.0.0.1 may be taken by something else meanwhile: then try
        // another one.
        for _ in 0..10 {
            let Ok(squatter) = TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))).await
            else {
                // Without an IPv6 loopback (some containers) there is nothing to squat on.
                eprintln!("no IPv6 loopback here: nothing to check");
                return;
            };
            let port = squatter.local_addr().expect("address").port();
            let refused = CallbackListener::bind(port)
                .await
                .err()
                .expect("a taken [::1] port is refused");
            if refused.to_string().contains("127.0.0.1") {
                continue;
            }
            assert!(refused.to_string().contains("[::1]"), "{refused}");
            return;
        }
        panic!("no port free on 127.0.0.1 and taken on [::1] in ten tries");
    }

    #[test]
    fn a_redirect_needs_the_state_sent_and_a_code() {
        let params = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let (status, _, result) = judge_callback("s1", &params(&[("code", "c"), ("state", "s1")]));
        assert_eq!((status, result), (StatusCode::OK, Some(Ok("c".to_owned()))));
        // Requests without the state sent are refused and do not end the sign-in.
        let (status, _, result) = judge_callback("s1", &params(&[("code", "c"), ("state", "s2")]));
        assert_eq!((status, result), (StatusCode::BAD_REQUEST, None));
        let (_, _, result) = judge_callback("s1", &params(&[("code", "c")]));
        assert_eq!(result, None);
        let (_, _, result) = judge_callback("s1", &params(&[("state", "s1")]));
        assert!(result.is_some_and(|r| r.is_err()));
        let (_, _, result) = judge_callback(
            "s1",
            &params(&[("error", "access_denied<script>"), ("state", "s1")]),
        );
        assert_eq!(
            result,
            Some(Err(
                "Xero refused the sign-in: access_deniedscript".to_owned()
            ))
        );
    }
}

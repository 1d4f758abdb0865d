//! `xero-operator xero-login` end to end: the CLI binary against the simulator's Xero identity
//! endpoints and the testbed's API server. The test plays the browser: it opens the authorize
//! URL the CLI prints (the simulator consents at once and redirects), then follows the redirect
//! to the CLI's loopback callback.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use powerbi_sim::{RunningSimulator, Seed, Simulator};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use xero_operator::http::{HttpSettings, RetryPolicy, http_client};
use xero_operator::secret::SecretString;
use xero_operator::xero::XeroTokenEndpoint;
use xero_testbed::TestEnv;

const XERO_CLIENT: &str = "0A1B2C3D4E5F60718293A4B5C6D7E8F9";
const XERO_SECRET: &str = "xero-secret";

/// A loopback port free right now, for the CLI's callback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A Xero app whose redirect URI is the CLI's callback on `port`, connected to one organisation.
fn seed(port: u16) -> Seed {
    Seed::from_yaml(&format!(
        r#"
xero:
  apps:
    - clientId: {XERO_CLIENT}
      clientSecret: {XERO_SECRET}
      redirectUris: ["http://localhost:{port}/callback"]
  connections:
    - {{tenantId: fe79f7dd-b6d4-4a92-ba7b-538af6289c58, tenantName: Demo Company (UK), tenantType: ORGANISATION}}
"#
    ))
    .expect("seed")
}

struct Setup {
    env: TestEnv,
    sim: RunningSimulator,
    port: u16,
}

impl Setup {
    async fn start(name: &str) -> Setup {
        xero_operator::telemetry::install_crypto_provider();
        let env = TestEnv::new(name).await;
        let port = free_port();
        let sim = Simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), seed(port))
            .await
            .expect("simulator");
        Setup { env, sim, port }
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.env.client.clone(), &self.env.namespace)
    }

    async fn create_secret(&self, name: &str, data: &[(&str, &str)]) {
        let data: BTreeMap<&str, &str> = data.iter().copied().collect();
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data}))
                .expect("secret");
        self.secrets()
            .create(&PostParams::default(), &secret)
            .await
            .expect("create secret");
    }

    async fn secret_data(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let secret = self.secrets().get_opt(name).await.expect("read secret")?;
        Some(
            secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8(v.0).expect("utf-8")))
                .collect(),
        )
    }

    /// Starts `xero-operator xero-login --secret NAME` with the simulator's URLs, and reads its
    /// output up to the authorize URL.
    async fn start_login(&self, secret: &str, extra: &[&str], env: &[(&str, &str)]) -> Login {
        let port = self.port.to_string();
        let mut command = Command::new(env!("CARGO_BIN_EXE_xero-operator"));
        command
            .args([
                "xero-login",
                "--secret",
                secret,
                "--namespace",
                &self.env.namespace,
                "--redirect-port",
                &port,
                "--timeout",
                "60s",
            ])
            .args(extra)
            .env("KUBECONFIG", self.env.plane.kubeconfig_path())
            .env("XERO_OPERATOR_XERO_IDENTITY_URL", self.sim.url())
            .env("XERO_OPERATOR_XERO_API_URL", self.sim.url())
            .env_remove("XERO_CLIENT_ID")
            .env_remove("XERO_CLIENT_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start xero-login");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut printed = String::new();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let mut line = String::new();
                if stdout.read_line(&mut line).await.expect("read stdout") == 0 {
                    return None;
                }
                printed.push_str(&line);
                let trimmed = line.trim();
                if trimmed.starts_with("http") && trimmed.contains("/connect/authorize") {
                    return Some(Url::parse(trimmed).expect("authorize URL"));
                }
            }
        })
        .await
        .expect("xero-login printed no authorize URL within 30s");
        let Some(authorize_url) = url else {
            let mut stderr = String::new();
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut stderr)
                .await;
            panic!("xero-login ended without an authorize URL:\n{printed}\n{stderr}");
        };
        Login {
            child,
            stdout,
            printed,
            authorize_url,
        }
    }

    /// How many requests the simulator served for `method` on paths starting with `prefix`.
    async fn count(&self, method: &str, prefix: &str) -> usize {
        let list: Vec<Value> = reqwest::Client::new()
            .get(format!("{}/_sim/requests", self.sim.url()))
            .query(&[("method", method), ("pathPrefix", prefix)])
            .send()
            .await
            .expect("request log")
            .json()
            .await
            .expect("request log json");
        list.len()
    }

    /// Xero's answer to `refresh_token`: it must be one the simulator issued and still accepts.
    async fn exchange(&self, refresh_token: &str) -> Result<(), String> {
        let endpoint = XeroTokenEndpoint::new(
            http_client(&HttpSettings::default()).expect("http client"),
            &Url::parse(&self.sim.url()).expect("sim url"),
            RetryPolicy::default(),
        )
        .expect("token endpoint");
        endpoint
            .exchange(
                XERO_CLIENT,
                &SecretString::new(XERO_SECRET),
                &SecretString::new(refresh_token),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

struct Login {
    child: Child,
    stdout: BufReader<ChildStdout>,
    printed: String,
    authorize_url: Url,
}

impl Login {
    /// Waits for the CLI to exit; returns its status and everything it printed.
    async fn finish(mut self) -> (ExitStatus, String) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("xero-login did not exit within 30s")
            .expect("wait for xero-login");
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).await.expect("stdout");
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            err.read_to_string(&mut stderr).await.expect("stderr");
        }
        (status, format!("{}{rest}{stderr}", self.printed))
    }
}

/// The browser: no automatic redirects, so that each hop is visible.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("browser")
}

/// Opens the authorize URL and returns where Xero sends the browser back to.
async fn consent(authorize_url: &Url) -> Url {
    let answer = browser()
        .get(authorize_url.clone())
        .send()
        .await
        .expect("authorize");
    assert_eq!(answer.status(), StatusCode::FOUND, "authorize answered");
    let location = answer
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .expect("Location text");
    Url::parse(location).expect("callback URL")
}

fn query(url: &Url) -> BTreeMap<String, String> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_updates_the_secret_with_a_refresh_token_xero_accepts() {
    let s = Setup::start("cli-login-update").await;
    // The app's credentials come from the existing Secret; its other keys stay.
    s.create_secret(
        "xero-app",
        &[
            ("clientId", XERO_CLIENT),
            ("clientSecret", XERO_SECRET),
            ("refreshToken", "revoked-long-ago"),
            ("note", "kept"),
        ],
    )
    .await;

    let login = s.start_login("xero-app", &[], &[]).await;
    let authorize = login.authorize_url.clone();
    assert_eq!(authorize.path(), "/identity/connect/authorize");
    let params = query(&authorize);
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], XERO_CLIENT);
    assert_eq!(params["code_challenge_method"], "S256");
    assert!(!params["code_challenge"].is_empty());
    assert!(params["state"].len() >= 16, "a random state: {params:?}");
    assert_eq!(
        params["redirect_uri"],
        format!("http://localhost:{}/callback", s.port)
    );
    let scopes: Vec<&str> = params["scope"].split(' ').collect();
    assert_eq!(scopes[0], "offline_access", "{scopes:?}");
    assert!(scopes.contains(&"accounting.settings.read"), "{scopes:?}");

    let callback = consent(&authorize).await;
    assert_eq!(callback.path(), "/callback");
    let page = browser().get(callback).send().await.expect("callback");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .expect("page")
            .contains("Signed in to Xero")
    );

    let (status, output) = login.finish().await;
    assert!(status.success(), "xero-login failed:\n{output}");
    let ns = &s.env.namespace;
    assert!(
        output.contains(&format!(
            "Updated Secret {ns}/xero-app with clientId, clientSecret and refreshToken"
        )),
        "{output}"
    );
    assert!(
        output.contains("Organisations connected (spec.xero.organisation): Demo Company (UK)"),
        "{output}"
    );

    let data = s.secret_data("xero-app").await.expect("the Secret");
    assert_eq!(data["clientId"], XERO_CLIENT);
    assert_eq!(data["clientSecret"], XERO_SECRET);
    assert_eq!(data["note"], "kept");
    let refresh_token = data["refreshToken"].clone();
    assert_ne!(refresh_token, "revoked-long-ago");
    for secret in [XERO_SECRET, refresh_token.as_str()] {
        assert!(!output.contains(secret), "the output shows a secret value");
    }
    // One code exchange, with the PKCE verifier (the simulator checks it), and the refresh
    // token works.
    assert_eq!(s.count("POST", "/connect/token").await, 1);
    s.exchange(&refresh_token)
        .await
        .expect("the simulator accepts the stored refresh token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_creates_the_secret_from_the_flags() {
    let s = Setup::start("cli-login-create").await;
    let login = s
        .start_login(
            "new-xero-app",
            &[
                "--client-id",
                XERO_CLIENT,
                "--scopes",
                "accounting.contacts.read",
            ],
            &[("XERO_CLIENT_SECRET", XERO_SECRET)],
        )
        .await;
    assert_eq!(
        query(&login.authorize_url)["scope"],
        "offline_access accounting.contacts.read"
    );
    let callback = consent(&login.authorize_url).await;
    let page = browser().get(callback).send().await.expect("callback");
    assert_eq!(page.status(), StatusCode::OK);
    let (status, output) = login.finish().await;
    assert!(status.success(), "xero-login failed:\n{output}");
    assert!(output.contains("Created Secret"), "{output}");

    let data = s.secret_data("new-xero-app").await.expect("the Secret");
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["clientId", "clientSecret", "refreshToken"]
    );
    assert!(!output.contains(&data["refreshToken"]));
    s.exchange(&data["refreshToken"])
        .await
        .expect("the simulator accepts the stored refresh token");
}

/// Any web page open in the browser can send a request to the callback; only Xero's redirect,
/// which carries the state sent, counts. A request with another state is refused, its code is
/// never exchanged, and the sign-in goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_another_state_is_refused_and_the_sign_in_goes_on() {
    let s = Setup::start("cli-login-state").await;
    let login = s
        .start_login(
            "xero-app",
            &["--client-id", XERO_CLIENT],
            &[("XERO_CLIENT_SECRET", XERO_SECRET)],
        )
        .await;
    let genuine = consent(&login.authorize_url).await;
    let code = query(&genuine)["code"].clone();
    let mut forged = genuine.clone();
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", "forged");
    let page = browser().get(forged).send().await.expect("callback");
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(
        page.text()
            .await
            .expect("page")
            .contains("Not a Xero sign-in")
    );
    assert_eq!(
        s.count("POST", "/connect/token").await,
        0,
        "the forged code is not used"
    );

    let page = browser().get(genuine).send().await.expect("callback");
    assert_eq!(page.status(), StatusCode::OK);
    let (status, output) = login.finish().await;
    assert!(status.success(), "xero-login failed:\n{output}");
    assert!(
        s.secret_data("xero-app").await.is_some(),
        "the Secret is written"
    );
    assert_eq!(s.count("POST", "/connect/token").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_app_credentials_the_cli_says_what_to_give() {
    let s = Setup::start("cli-login-usage").await;
    let output = Command::new(env!("CARGO_BIN_EXE_xero-operator"))
        .args(["xero-login", "--secret", "xero-app", "-n", &s.env.namespace])
        .env("KUBECONFIG", s.env.plane.kubeconfig_path())
        .env_remove("XERO_CLIENT_ID")
        .env_remove("XERO_CLIENT_SECRET")
        .output()
        .await
        .expect("run xero-login");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no Xero app client id: pass --client-id and --client-secret"),
        "{stderr}"
    );
}

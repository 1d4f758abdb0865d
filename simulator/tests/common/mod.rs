//! Shared test support: the example tenant, an in-process simulator with an HTTP client, and a
//! checker for the official response schemas.
#![allow(dead_code)]

pub mod schema;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use powerbi_sim::{RunningSimulator, Seed, Simulator};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const SEED_YAML: &str = include_str!("../../examples/seed.yaml");
pub const TENANT: &str = "7d0b1a8e-0c57-4d8e-9b3a-5f2c9d1e4a60";
pub const CLIENT_ID: &str = "3f1c2b4a-9d8e-4f7a-b6c5-1e2d3c4b5a69";
pub const CLIENT_SECRET: &str = "sp-secret";
pub const GROUP: &str = "f089354e-8366-4e18-aea3-4cb4a3a50b48";
pub const DATASET: &str = "cfafbeb1-8037-4d0c-896e-a46fb27ff229";
pub const PERSONS_DATASET: &str = "2e6f0c2a-4b39-4c8f-9c44-0d3cf5d0e7a1";
pub const GATEWAY: &str = "1f69e798-5852-4fdd-ab01-33bb14b6e934";
pub const DATASOURCE: &str = "dc2f2dac-e5e2-4c37-af76-2a0bc10f16cb";
pub const PERSONS_GATEWAY: &str = "8a3c0e56-8f2b-4d7a-9b1e-6c5d4e3f2a10";
pub const PERSONS_DATASOURCE: &str = "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d";
pub const XERO_CLIENT: &str = "0A1B2C3D4E5F60718293A4B5C6D7E8F9";
pub const XERO_SECRET: &str = "xero-secret";
pub const XERO_UK: &str = "fe79f7dd-b6d4-4a92-ba7b-538af6289c58";
pub const XERO_NZ: &str = "0c7a5e42-1b6d-4f8e-a3c9-2d1e0f9b8a76";
pub const REDIRECT: &str = "http://localhost:8912/callback";
pub const INITIAL_REFRESH_TOKEN: &str = "initial-refresh-token";

/// The example tenant of `examples/seed.yaml` (also the README's).
pub fn seed() -> Seed {
    Seed::from_yaml(SEED_YAML).expect("example seed parses")
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Asserts the Power BI error envelope with the given status and code.
    pub fn assert_pbi_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(self.json()["error"]["code"], code, "body: {}", self.text);
        assert!(
            self.json()["error"]["message"].is_string(),
            "body: {}",
            self.text
        );
    }
}

/// An in-process simulator and a client for it.
pub struct Harness {
    pub sim: RunningSimulator,
    pub url: String,
    pub http: reqwest::Client,
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(seed()).await
    }

    pub async fn start_with(seed: Seed) -> Self {
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let sim = Simulator::start(listen, seed)
            .await
            .expect("simulator starts");
        let url = sim.url();
        Self {
            sim,
            url,
            http: client(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let method_is_post = method == Method::POST;
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        match body {
            Some(body) => request = request.json(body),
            // As a well-behaved client: Power BI's front ends refuse a POST of unstated length.
            None if method_is_post => request = request.header("content-length", "0"),
            None => {}
        }
        read(request.send().await.expect("request sent")).await
    }

    /// Sends a POST with no body and no `Content-Length`, as reqwest does by default.
    pub async fn post_without_length(&self, path: &str, bearer: &str) -> Reply {
        let request = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(bearer);
        read(request.send().await.expect("request sent")).await
    }

    pub async fn form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        fields: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.http.post(format!("{}{path}", self.url)).form(fields);
        if let Some((user, password)) = basic {
            request = request.basic_auth(user, Some(password));
        }
        read(request.send().await.expect("request sent")).await
    }

    /// A Power BI token for the example service principal.
    pub async fn pbi_token(&self) -> String {
        let reply = self
            .form(
                &format!("/{TENANT}/oauth2/v2.0/token"),
                None,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", CLIENT_ID),
                    ("client_secret", CLIENT_SECRET),
                    ("scope", "https://analysis.windows.net/powerbi/api/.default"),
                ],
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json()["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn pbi(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Reply {
        self.send(method, &format!("/v1.0/myorg{path}"), Some(token), body)
            .await
    }

    /// Exchanges a Xero refresh token (HTTP Basic client auth, as the operator does).
    pub async fn xero_refresh(&self, refresh_token: &str) -> Reply {
        self.form(
            "/connect/token",
            Some((XERO_CLIENT, XERO_SECRET)),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// Exchanges a refresh token that must work; returns (access token, new refresh token).
    pub async fn xero_tokens(&self, refresh_token: &str) -> (String, String) {
        let reply = self.xero_refresh(refresh_token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let body = reply.json();
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Puts a Xero access token on a data source as OAuth2 credentials.
    pub async fn set_credentials(
        &self,
        token: &str,
        gateway: &str,
        datasource: &str,
        access_token: &str,
    ) -> Reply {
        let body = credentials_body(access_token);
        self.pbi(
            Method::PATCH,
            &format!("/gateways/{gateway}/datasources/{datasource}"),
            token,
            Some(&body),
        )
        .await
    }

    pub async fn refresh_now(&self, token: &str, dataset: &str) -> Reply {
        self.pbi(
            Method::POST,
            &format!("/groups/{GROUP}/datasets/{dataset}/refreshes"),
            token,
            None,
        )
        .await
    }

    pub async fn history(&self, token: &str, dataset: &str) -> Vec<Value> {
        let reply = self
            .pbi(
                Method::GET,
                &format!("/groups/{GROUP}/datasets/{dataset}/refreshes"),
                token,
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json()["value"].as_array().unwrap().clone()
    }

    /// Update Refresh Schedule In Group with `body` (`{"value": {...}}`).
    pub async fn patch_schedule(&self, token: &str, dataset: &str, body: &Value) -> Reply {
        self.pbi(
            Method::PATCH,
            &format!("/groups/{GROUP}/datasets/{dataset}/refreshSchedule"),
            token,
            Some(body),
        )
        .await
    }

    pub async fn schedule(&self, token: &str, dataset: &str) -> Value {
        let reply = self
            .pbi(
                Method::GET,
                &format!("/groups/{GROUP}/datasets/{dataset}/refreshSchedule"),
                token,
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json()
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        self.send(method, &format!("/_sim{path}"), None, body).await
    }

    pub async fn advance(&self, seconds: f64) {
        let reply = self
            .admin(
                Method::POST,
                "/clock/advance",
                Some(&json!({"seconds": seconds})),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }

    pub async fn scheduled_refresh(&self, dataset: &str, body: Option<&Value>) -> Reply {
        self.admin(
            Method::POST,
            &format!("/datasets/{dataset}/scheduled-refresh"),
            body,
        )
        .await
    }

    pub async fn requests(&self) -> Vec<Value> {
        let reply = self.admin(Method::GET, "/requests", None).await;
        assert_eq!(reply.status, 200);
        reply.json().as_array().unwrap().clone()
    }

    pub async fn state(&self) -> Value {
        let reply = self.admin(Method::GET, "/state", None).await;
        assert_eq!(reply.status, 200);
        reply.json()
    }

    /// Moves the clock until the newest refresh of a dataset has ended; returns it.
    pub async fn finish_refresh(&self, token: &str, dataset: &str) -> Value {
        for _ in 0..100 {
            let latest = self.history(token, dataset).await.remove(0);
            if latest["status"] != "Unknown" {
                return latest;
            }
            self.advance(60.0).await;
        }
        panic!("refresh of {dataset} never ended");
    }

    /// Polls (real time, with a deadline) until the newest refresh has ended; returns it.
    pub async fn wait_refresh(&self, token: &str, dataset: &str, deadline: Duration) -> Value {
        let until = Instant::now() + deadline;
        loop {
            let latest = self.history(token, dataset).await.remove(0);
            if latest["status"] != "Unknown" {
                return latest;
            }
            assert!(
                Instant::now() < until,
                "refresh still running after {deadline:?}: {latest}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn credentials_body(access_token: &str) -> Value {
    let credentials =
        json!({"credentialData": [{"name": "accessToken", "value": access_token}]}).to_string();
    json!({
        "credentialDetails": {
            "credentialType": "OAuth2",
            "credentials": credentials,
            "encryptedConnection": "Encrypted",
            "encryptionAlgorithm": "None",
            "privacyLevel": "None",
            "useEndUserOAuth2Credentials": false
        }
    })
}

pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body read");
    Reply {
        status,
        headers,
        text,
    }
}

/// The error in a failed refresh's serviceExceptionJson (either shape the service uses).
pub fn refresh_error_code(entry: &Value) -> String {
    let raw = entry["serviceExceptionJson"]
        .as_str()
        .expect("serviceExceptionJson is a string");
    let parsed: Value = serde_json::from_str(raw).expect("serviceExceptionJson holds JSON");
    parsed["errorCode"]
        .as_str()
        .or_else(|| parsed["error"]["code"].as_str())
        .expect("an error code")
        .to_owned()
}

/// A JWT-shaped assertion with the given claims (unsigned: the simulator checks shape only).
pub fn assertion(claims: &Value) -> String {
    let enc = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        enc(&json!({"alg": "RS256", "typ": "JWT"})),
        enc(claims)
    )
}

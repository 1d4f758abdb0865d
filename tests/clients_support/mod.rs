//! What the client tests share: the simulator with a small tenant, its admin API, and the
//! clients pointed at it.
#![allow(dead_code)]

use std::time::Duration;

use powerbi_sim::{RunningSimulator, Seed, Simulator};
use reqwest::Url;
use serde_json::{Value, json};
use xero_operator::endpoints::{Endpoints, ServiceUrls};
use xero_operator::http::{HttpSettings, RetryPolicy, http_client};

pub const TENANT_ID: &str = "7d0b1a8e-0c57-4d8e-9b3a-5f2c9d1e4a60";
pub const SP_CLIENT_ID: &str = "3f1c2b4a-9d8e-4f7a-b6c5-1e2d3c4b5a69";
pub const SP_SECRET: &str = "sp-secret-value-1234";
pub const WI_CLIENT_ID: &str = "5a5a5a5a-1111-2222-3333-444444444444";
pub const OIDC_ISSUER: &str = "https://oidc.cluster.test";
pub const WI_SUBJECT: &str = "system:serviceaccount:xero-operator:xero-operator";
pub const WORKSPACE: &str = "f089354e-8366-4e18-aea3-4cb4a3a50b48";
pub const DATASET: &str = "cfafbeb1-8037-4d0c-896e-a46fb27ff229";
pub const OTHER_DATASET: &str = "2e6f0c2a-4b39-4c8f-9c44-0d3cf5d0e7a1";
pub const GATEWAY: &str = "1f69e798-5852-4fdd-ab01-33bb14b6e934";
pub const DATASOURCE: &str = "dc2f2dac-e5e2-4c37-af76-2a0bc10f16cb";
pub const XERO_CLIENT_ID: &str = "0A1B2C3D4E5F60718293A4B5C6D7E8F9";
pub const XERO_CLIENT_SECRET: &str = "xero-client-secret-value-5678";
pub const INITIAL_REFRESH_TOKEN: &str = "initial-refresh-token-value-9abc";
pub const DEMO_UK: &str = "fe79f7dd-b6d4-4a92-ba7b-538af6289c58";

/// A tenant: one service principal with a secret and one with a federated credential, a
/// workspace with the operator's Xero dataset and a dataset someone else owns, a Xero app with
/// three connections (two share a name), and the refresh token a Secret starts with.
pub fn seed() -> Seed {
    let yaml = format!(
        r#"
config:
  startTime: "2025-01-06T08:00:00Z"
servicePrincipals:
  - tenantId: {TENANT_ID}
    clientId: {SP_CLIENT_ID}
    clientSecret: {SP_SECRET}
    displayName: xero-operator
  - tenantId: {TENANT_ID}
    clientId: {WI_CLIENT_ID}
    federatedCredentials:
      - issuer: {OIDC_ISSUER}
        subject: "{WI_SUBJECT}"
workspaces:
  - id: {WORKSPACE}
    name: Finance
    capacity: Shared
    datasets:
      - id: {DATASET}
        name: Xero
        configuredBy: xero-operator
        datasources:
          - datasourceType: Extension
            connectionDetails: {{kind: Xero, path: Xero}}
            gatewayId: {GATEWAY}
            datasourceId: {DATASOURCE}
            xeroTenantId: {DEMO_UK}
        schedule:
          enabled: true
          days: [Monday, Tuesday, Wednesday, Thursday, Friday]
          times: ["06:00", "12:30"]
          localTimeZoneId: UTC
          notifyOption: NoNotification
        refreshHistory:
          - requestId: 9399bb89-25d1-44f8-8576-136d7e9014b1
            refreshType: Scheduled
            startTime: "2025-01-03T06:00:12Z"
            endTime: "2025-01-03T06:01:40Z"
            status: Failed
            serviceExceptionJson: '{{"errorCode":"ModelRefreshFailed_CredentialsNotSpecified"}}'
      - id: {OTHER_DATASET}
        name: Sales
        configuredBy: jane@contoso.com
        datasources:
          - gatewayId: 8a3c0e56-8f2b-4d7a-9b1e-6c5d4e3f2a10
            datasourceId: 5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d
xero:
  apps:
    - clientId: {XERO_CLIENT_ID}
      clientSecret: {XERO_CLIENT_SECRET}
  connections:
    - tenantId: {DEMO_UK}
      tenantName: Demo Company (UK)
      createdDateUtc: "2019-12-07T18:46:19.51654Z"
    - tenantId: 11111111-2222-3333-4444-555555555555
      tenantName: Twin Ltd
    - tenantId: 66666666-7777-8888-9999-000000000000
      tenantName: Twin Ltd
  refreshTokens:
    - token: {INITIAL_REFRESH_TOKEN}
  accessTokens:
    - token: a-xero-access-token
      expiresInSeconds: 1800
"#
    );
    match Seed::from_yaml(&yaml) {
        Ok(seed) => seed,
        Err(error) => panic!("test seed: {error}"),
    }
}

/// A started simulator and its admin API.
pub struct Sim {
    pub running: RunningSimulator,
    pub base: Url,
    admin: reqwest::Client,
}

impl Sim {
    pub async fn start() -> Sim {
        Self::start_with(seed()).await
    }

    pub async fn start_with(seed: Seed) -> Sim {
        xero_operator::telemetry::install_crypto_provider();
        let running = Simulator::start("127.0.0.1:0".parse().unwrap(), seed)
            .await
            .expect("simulator starts");
        let base = Url::parse(&running.url()).unwrap();
        Sim {
            running,
            base,
            admin: reqwest::Client::new(),
        }
    }

    pub fn urls(&self) -> ServiceUrls {
        Endpoints::all_at(&self.base)
            .resolve_with_env(|_| None)
            .expect("simulator URLs are acceptable")
    }

    fn admin_url(&self, path: &str) -> String {
        format!("{}_sim/{path}", self.base)
    }

    /// Injects a fault (`/_sim/faults`), e.g. `json!({"status": 429, "times": 1})`.
    pub async fn fault(&self, spec: Value) {
        let response = self
            .admin
            .post(self.admin_url("faults"))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201, "fault {spec} accepted");
    }

    pub async fn clear_faults(&self) {
        self.admin
            .delete(self.admin_url("faults"))
            .send()
            .await
            .unwrap();
    }

    /// The request log, filtered by path prefix.
    pub async fn requests(&self, path_prefix: &str) -> Vec<Value> {
        self.admin
            .get(self.admin_url("requests"))
            .query(&[("pathPrefix", path_prefix)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// How many refresh-token exchanges Xero's token endpoint served.
    pub async fn xero_token_requests(&self) -> usize {
        self.requests("/connect/token").await.len()
    }

    pub async fn advance_clock(&self, seconds: u64) {
        let response = self
            .admin
            .post(self.admin_url("clock/advance"))
            .json(&json!({"seconds": seconds}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// Revokes every Xero grant (what a user disconnecting the app does).
    pub async fn revoke_all_xero(&self) {
        let response = self
            .admin
            .post(self.admin_url("xero/revoke"))
            .json(&json!({"all": true}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    pub async fn state(&self) -> Value {
        self.admin
            .get(self.admin_url("state"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The operator's HTTP client with short timeouts, as the tests want them.
pub fn http() -> reqwest::Client {
    http_client(&HttpSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(3),
    })
    .expect("HTTP client")
}

/// Retries quick enough for tests.
pub fn quick_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(10),
    }
}

/// A log writer that keeps everything written, for tests that read the log back.
#[derive(Clone, Default)]
pub struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

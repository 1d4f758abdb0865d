//! The naive poller the operator is compared with: what a PowerShell script in a CronJob does.
//! Every 15 minutes it signs in to Power BI, reads each dataset's latest refresh, and on a
//! failure exchanges the Xero refresh token, looks up the datasource, puts the new access token
//! on it and triggers a refresh. One dataset after another, as a script would.

use std::time::Duration;

use serde_json::{Value, json};

use crate::clock::BenchClock;
use crate::error::{Context as _, Result, fail};
use crate::fixtures::{SP_CLIENT, SP_SECRET, TENANT, Tenant, XERO_CLIENT, XERO_SECRET};

/// How often the CronJob runs.
pub const POLL_EVERY: Duration = Duration::from_secs(15 * 60);

pub struct Poller {
    url: String,
    http: reqwest::Client,
    tenant: Tenant,
    /// The current refresh token of each Xero Secret (the script stores the rotated one).
    refresh_tokens: Vec<String>,
}

impl Poller {
    pub fn new(url: String, http: reqwest::Client, tenant: Tenant) -> Poller {
        let refresh_tokens = (0..tenant.options.xero_secrets)
            .map(Tenant::refresh_token)
            .collect();
        Poller {
            url,
            http,
            tenant,
            refresh_tokens,
        }
    }

    /// Runs a round every [`POLL_EVERY`] of virtual time, on the quarter hour as a CronJob
    /// scheduled `*/15 * * * *` does, until `until`.
    pub async fn run(mut self, clock: BenchClock, until: jiff::Timestamp) -> Result<usize> {
        let every = POLL_EVERY.as_secs() as i64;
        let now = clock.now().as_second();
        let mut next = jiff::Timestamp::from_second(now + (every - now.rem_euclid(every)) % every)
            .context("the poller's first round")?;
        let mut heals = 0;
        while next < until {
            clock.sleep_until(next).await;
            heals += self.round().await?;
            next = next
                .checked_add(POLL_EVERY)
                .context("the poller's next round")?;
        }
        Ok(heals)
    }

    /// One run of the script; returns how many datasets it healed.
    async fn round(&mut self) -> Result<usize> {
        let token = self.powerbi_token().await?;
        let mut heals = 0;
        for i in 0..self.tenant.datasets.len() {
            let d = self.tenant.datasets[i].clone();
            let history = self
                .powerbi(
                    reqwest::Method::GET,
                    &format!(
                        "groups/{}/datasets/{}/refreshes?$top=1",
                        d.workspace_id, d.id
                    ),
                    &token,
                    None,
                )
                .await?;
            if history["value"][0]["status"] != "Failed" {
                continue;
            }
            let access_token = self.xero_access_token(d.xero_secret).await?;
            let sources = self
                .powerbi(
                    reqwest::Method::GET,
                    &format!("groups/{}/datasets/{}/datasources", d.workspace_id, d.id),
                    &token,
                    None,
                )
                .await?;
            let source = &sources["value"][0];
            let credentials =
                json!({"credentialData": [{"name": "accessToken", "value": access_token}]});
            self.powerbi(
                reqwest::Method::PATCH,
                &format!(
                    "gateways/{}/datasources/{}",
                    source["gatewayId"].as_str().unwrap_or_default(),
                    source["datasourceId"].as_str().unwrap_or_default()
                ),
                &token,
                Some(json!({"credentialDetails": {
                    "credentialType": "OAuth2",
                    "credentials": credentials.to_string(),
                    "encryptedConnection": "Encrypted",
                    "encryptionAlgorithm": "None",
                    "privacyLevel": "Organizational",
                }})),
            )
            .await?;
            // Power BI may refuse the refresh (one runs, or the day's refreshes are used up):
            // the script prints the error and goes on with the next dataset.
            let started = self
                .powerbi(
                    reqwest::Method::POST,
                    &format!("groups/{}/datasets/{}/refreshes", d.workspace_id, d.id),
                    &token,
                    Some(json!({"notifyOption": "NoNotification"})),
                )
                .await;
            match started {
                Ok(_) => heals += 1,
                Err(err) => eprintln!("[poller] {err}"),
            }
        }
        Ok(heals)
    }

    async fn powerbi_token(&self) -> Result<String> {
        let response = self
            .http
            .post(format!("{}/{TENANT}/oauth2/v2.0/token", self.url))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", SP_CLIENT),
                ("client_secret", SP_SECRET),
                ("scope", "https://analysis.windows.net/powerbi/api/.default"),
            ])
            .send()
            .await
            .context("poller: Entra token")?;
        let body: Value = json_of(response, "Entra token").await?;
        Ok(body["access_token"].as_str().unwrap_or_default().to_owned())
    }

    async fn xero_access_token(&mut self, secret: usize) -> Result<String> {
        let response = self
            .http
            .post(format!("{}/connect/token", self.url))
            .basic_auth(XERO_CLIENT, Some(XERO_SECRET))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", self.refresh_tokens[secret].as_str()),
            ])
            .send()
            .await
            .context("poller: Xero token")?;
        let body: Value = json_of(response, "Xero token").await?;
        if let Some(rotated) = body["refresh_token"].as_str() {
            self.refresh_tokens[secret] = rotated.to_owned();
        }
        Ok(body["access_token"].as_str().unwrap_or_default().to_owned())
    }

    async fn powerbi(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}/v1.0/myorg/{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.context(format!("poller: {path}"))?;
        json_of(response, path).await
    }
}

async fn json_of(response: reqwest::Response, what: &str) -> Result<Value> {
    let status = response.status();
    let text = response.text().await.context(format!("poller: {what}"))?;
    if !status.is_success() {
        return fail(format!("poller: {what}: {status}: {text}"));
    }
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).context(format!("poller: {what}: not JSON"))
}

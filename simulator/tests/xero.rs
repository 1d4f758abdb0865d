//! Xero identity behaviour: rotation and grace, invalid_grant, client authentication,
//! authorization code with PKCE, revocation, connections and access token expiry.

mod common;

use common::*;
use powerbi_sim::seed::GraceReuse;
use reqwest::Method;
use serde_json::json;

const GRANT_INVALID: &str = r#"{"error":"invalid_grant"}"#;

#[tokio::test]
async fn every_exchange_rotates_and_the_old_token_works_during_the_grace_period_only() {
    let h = Harness::start().await;
    let first = h.xero_refresh(INITIAL_REFRESH_TOKEN).await;
    assert_eq!(first.status, 200);
    let body = first.json();
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["id_token"].is_string(), "openid was granted");
    assert!(body["scope"].as_str().unwrap().contains("offline_access"));
    assert_eq!(
        first.header("xero-origin-id").as_deref(),
        Some("IdentityServer.Web")
    );
    let rotated = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, INITIAL_REFRESH_TOKEN);

    // Inside the 30-minute grace period the old token still works (a lost response is recoverable)...
    h.advance(29.0 * 60.0).await;
    let again = h.xero_refresh(INITIAL_REFRESH_TOKEN).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_ne!(
        again.json()["refresh_token"],
        rotated.as_str(),
        "NewChild mode mints a new child"
    );

    // ...and after it, it is refused with Xero's exact body.
    h.advance(61.0).await;
    let stale = h.xero_refresh(INITIAL_REFRESH_TOKEN).await;
    assert_eq!(stale.status, 400);
    assert_eq!(stale.text, GRANT_INVALID);

    // The token it rotated to keeps working, and rotates in turn.
    let (_, next) = h.xero_tokens(&rotated).await;
    assert_ne!(next, rotated);
}

#[tokio::test]
async fn same_child_mode_returns_the_first_child_again() {
    let mut seed = seed();
    seed.config.xero_grace_reuse = GraceReuse::SameChild;
    let h = Harness::start_with(seed).await;
    let (_, child) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    let (_, again) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    assert_eq!(child, again);
}

#[tokio::test]
async fn unused_refresh_tokens_expire_after_sixty_days() {
    let h = Harness::start().await;
    h.advance(60.0 * 24.0 * 3600.0).await;
    let reply = h.xero_refresh(INITIAL_REFRESH_TOKEN).await;
    assert_eq!(
        (reply.status.as_u16(), reply.text.as_str()),
        (400, GRANT_INVALID)
    );
}

#[tokio::test]
async fn client_authentication_by_basic_or_form_but_not_conflicting() {
    let h = Harness::start().await;
    let (_, token) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    // Form body credentials, as xero-python sends them.
    let reply = h
        .form(
            "/connect/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &token),
                ("client_id", XERO_CLIENT),
                ("client_secret", XERO_SECRET),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let token = reply.json()["refresh_token"].as_str().unwrap().to_owned();

    // (HTTP Basic credentials, extra form fields)
    type Case<'a> = (Option<(&'a str, &'a str)>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (None, vec![]),
        (Some((XERO_CLIENT, "wrong")), vec![]),
        (
            None,
            vec![("client_id", XERO_CLIENT), ("client_secret", "wrong")],
        ),
        (Some(("UNKNOWN", XERO_SECRET)), vec![]),
        (
            Some((XERO_CLIENT, XERO_SECRET)),
            vec![("client_id", "OTHER")],
        ),
    ];
    for (basic, extra) in cases {
        let mut fields = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", token.as_str()),
        ];
        fields.extend(extra);
        let reply = h.form("/connect/token", basic, &fields).await;
        assert_eq!(reply.status, 400, "{basic:?}");
        assert_eq!(reply.text, r#"{"error":"invalid_client"}"#);
    }
    let reply = h
        .form(
            "/connect/token",
            Some((XERO_CLIENT, XERO_SECRET)),
            &[("grant_type", "password"), ("refresh_token", &token)],
        )
        .await;
    assert_eq!(
        (reply.status.as_u16(), reply.text.as_str()),
        (400, r#"{"error":"unsupported_grant_type"}"#)
    );
    let reply = h
        .form(
            "/connect/token",
            Some((XERO_CLIENT, XERO_SECRET)),
            &[("refresh_token", &token)],
        )
        .await;
    assert_eq!(reply.text, r#"{"error":"unsupported_grant_type"}"#);
    let reply = h.xero_refresh("never-issued").await;
    assert_eq!(reply.text, GRANT_INVALID);
}

#[tokio::test]
async fn access_tokens_expire_after_thirty_minutes() {
    let h = Harness::start().await;
    let (access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    assert_eq!(
        h.send(Method::GET, "/Connections", Some(&access), None)
            .await
            .status,
        200
    );
    h.advance(1800.0).await;
    let reply = h
        .send(Method::GET, "/connections", Some(&access), None)
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["Title"], "Unauthorized");
    assert!(
        reply.json()["Detail"]
            .as_str()
            .unwrap()
            .starts_with("TokenExpired: token expired at 01/06/2025 08:30:")
    );

    let reply = h.send(Method::GET, "/connections", None, None).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["Status"], 401);
    let reply = h
        .send(Method::GET, "/connections", Some("made-up"), None)
        .await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn the_app_wide_minute_limit_answers_429_with_xeros_headers() {
    let mut seed = seed();
    seed.config.xero_app_calls_per_minute = 2;
    let h = Harness::start_with(seed).await;
    let (access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    for left in ["1", "0"] {
        let reply = h
            .send(Method::GET, "/connections", Some(&access), None)
            .await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.header("x-appminlimit-remaining").as_deref(),
            Some(left)
        );
    }
    let limited = h
        .send(Method::GET, "/connections", Some(&access), None)
        .await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.header("x-rate-limit-problem").as_deref(),
        Some("appminute")
    );
    let wait: u64 = limited
        .header("retry-after")
        .and_then(|r| r.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    h.advance(wait as f64).await;
    assert_eq!(
        h.send(Method::GET, "/connections", Some(&access), None)
            .await
            .status,
        200,
        "a new minute"
    );
}

#[tokio::test]
async fn revoked_tokens_give_invalid_grant_and_lose_their_connections() {
    let h = Harness::start().await;
    let (access, rotated) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    let reply = h
        .admin(
            Method::POST,
            "/xero/revoke",
            Some(&json!({"refreshToken": rotated})),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["revokedGrants"], 1);
    assert_eq!(h.xero_refresh(&rotated).await.text, GRANT_INVALID);
    assert_eq!(
        h.xero_refresh(INITIAL_REFRESH_TOKEN).await.text,
        GRANT_INVALID,
        "the whole family is revoked"
    );
    let reply = h
        .send(Method::GET, "/connections", Some(&access), None)
        .await;
    assert_eq!((reply.status.as_u16(), reply.json()), (200, json!([])));

    let unknown = h
        .admin(
            Method::POST,
            "/xero/revoke",
            Some(&json!({"refreshToken": "nope"})),
        )
        .await;
    assert_eq!(unknown.status, 404);
    let bad = h
        .admin(Method::POST, "/xero/revoke", Some(&json!({})))
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn revoke_all_and_the_revocation_endpoint() {
    let h = Harness::start().await;
    let (_, rotated) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    let reply = h
        .admin(Method::POST, "/xero/revoke", Some(&json!({"all": true})))
        .await;
    assert_eq!(
        reply.json()["revokedGrants"],
        2,
        "the seeded refresh token's and the seeded access token's grants"
    );
    assert_eq!(h.xero_refresh(&rotated).await.text, GRANT_INVALID);

    let h = Harness::start().await;
    let (_, rotated) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    let reply = h
        .form(
            "/connect/revocation",
            Some((XERO_CLIENT, XERO_SECRET)),
            &[("token", &rotated)],
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(h.xero_refresh(&rotated).await.text, GRANT_INVALID);
}

/// Runs `/connect/authorize` and returns the redirect's query parameters.
async fn authorize(h: &Harness, client_id: &str, challenge: Option<&str>) -> Vec<(String, String)> {
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        (
            "scope",
            "openid offline_access accounting.transactions.read",
        ),
        ("state", "xyz-state"),
    ];
    if let Some(c) = challenge {
        query.extend([("code_challenge", c), ("code_challenge_method", "S256")]);
    }
    let reply = read(
        h.http
            .get(format!("{}/connect/authorize", h.url))
            .query(&query)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 302, "{}", reply.text);
    let location = reply.header("location").unwrap();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    let url = reqwest::Url::parse(&location).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn authorization_code_with_pkce() {
    let h = Harness::start().await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let redirect = authorize(&h, XERO_CLIENT, Some(challenge)).await;
    assert_eq!(param(&redirect, "state"), "xyz-state");
    let code = param(&redirect, "code");
    assert!(!code.is_empty());

    let exchange = |verifier: &'static str, code: String, redirect_uri: &'static str| {
        let h = &h;
        async move {
            h.form(
                "/connect/token",
                Some((XERO_CLIENT, XERO_SECRET)),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", verifier),
                ],
            )
            .await
        }
    };
    let wrong = exchange(
        "wrong-verifier-wrong-verifier-wrong-verifier-xx",
        code.clone(),
        REDIRECT,
    )
    .await;
    assert_eq!(
        (wrong.status.as_u16(), wrong.text.as_str()),
        (400, GRANT_INVALID)
    );
    let other_uri = exchange(verifier, code.clone(), "http://localhost:1/elsewhere").await;
    assert_eq!(other_uri.text, GRANT_INVALID);

    let ok = exchange(verifier, code.clone(), REDIRECT).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let body = ok.json();
    assert!(
        body["refresh_token"].is_string(),
        "offline_access was asked for"
    );
    assert!(body["id_token"].is_string());
    let access = body["access_token"].as_str().unwrap();
    let connections = h
        .send(Method::GET, "/connections", Some(access), None)
        .await
        .json();
    assert_eq!(connections.as_array().unwrap().len(), 2);
    // The new consent's authEventId filters to it.
    let event = connections[0]["authEventId"].as_str().unwrap().to_owned();
    let filtered = h
        .send(
            Method::GET,
            &format!("/connections?authEventId={event}"),
            Some(access),
            None,
        )
        .await
        .json();
    assert_eq!(filtered.as_array().unwrap().len(), 2);
    let none = h
        .send(
            Method::GET,
            "/connections?authEventId=00000000-0000-0000-0000-000000000000",
            Some(access),
            None,
        )
        .await
        .json();
    assert_eq!(none, json!([]));

    let reused = exchange(verifier, code, REDIRECT).await;
    assert_eq!(reused.text, GRANT_INVALID, "a code works once");

    // Codes expire.
    let code = param(&authorize(&h, XERO_CLIENT, Some(challenge)).await, "code");
    h.advance(301.0).await;
    assert_eq!(exchange(verifier, code, REDIRECT).await.text, GRANT_INVALID);
}

#[tokio::test]
async fn authorize_refuses_unknown_clients_and_redirect_uris_without_redirecting() {
    let h = Harness::start().await;
    let reply = read(
        h.http
            .get(format!("{}/connect/authorize", h.url))
            .query(&[
                ("response_type", "code"),
                ("client_id", "UNKNOWN"),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "unauthorized_client");
    let reply = read(
        h.http
            .get(format!("{}/connect/authorize", h.url))
            .query(&[
                ("response_type", "code"),
                ("client_id", XERO_CLIENT),
                ("redirect_uri", "http://evil/"),
                ("scope", "openid"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(reply.header("location").is_none());
    let reply = read(
        h.http
            .get(format!("{}/connect/authorize", h.url))
            .query(&[
                ("response_type", "token"),
                ("client_id", XERO_CLIENT),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
                ("state", "s"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 302);
    assert!(
        reply
            .header("location")
            .unwrap()
            .contains("error=unsupported_response_type")
    );
}

#[tokio::test]
async fn a_public_pkce_app_needs_the_verifier() {
    let mut seed = seed();
    seed.xero.apps.push(powerbi_sim::seed::XeroAppSeed {
        client_id: "PUBLICAPP".into(),
        client_secret: None,
        redirect_uris: vec![REDIRECT.into()],
        consent_tenant_ids: Some(vec![XERO_UK.into()]),
    });
    let h = Harness::start_with(seed).await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let code = param(
        &authorize(
            &h,
            "PUBLICAPP",
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        )
        .await,
        "code",
    );
    let reply = h
        .form(
            "/connect/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "PUBLICAPP"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let access = reply.json()["access_token"].as_str().unwrap().to_owned();
    let connections = h
        .send(Method::GET, "/connections", Some(&access), None)
        .await
        .json();
    assert_eq!(
        connections.as_array().unwrap().len(),
        1,
        "consent covered only the UK organisation"
    );
    assert_eq!(connections[0]["tenantId"], XERO_UK);
    assert_ne!(connections[0]["createdDateUtc"], connections[0]["tenantId"]);
}

#[tokio::test]
async fn deleting_a_connection_disconnects_that_tenant_only() {
    let h = Harness::start().await;
    let (access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    let reply = h
        .send(
            Method::DELETE,
            "/connections/7cb59f93-2964-421d-bb5e-a0f7a4572a44",
            Some(&access),
            None,
        )
        .await;
    assert_eq!(reply.status, 204);
    let left = h
        .send(Method::GET, "/connections", Some(&access), None)
        .await
        .json();
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["tenantId"], XERO_NZ);
    let again = h
        .send(
            Method::DELETE,
            "/connections/7cb59f93-2964-421d-bb5e-a0f7a4572a44",
            Some(&access),
            None,
        )
        .await;
    assert_eq!(again.status, 404);
}

/// `GET /api.xro/2.0/Organisation` for `tenant`, as an Accounting API client sends it.
async fn organisation(h: &Harness, access: &str, tenant: Option<&str>) -> Reply {
    let mut request = client()
        .get(format!("{}/api.xro/2.0/Organisation", h.url))
        .bearer_auth(access)
        .header("accept", "application/json");
    if let Some(tenant) = tenant {
        request = request.header("xero-tenant-id", tenant);
    }
    read(request.send().await.expect("request sent")).await
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .header("retry-after")
        .and_then(|r| r.parse().ok())
        .expect("Retry-After in seconds")
}

#[tokio::test]
async fn each_organisation_has_its_own_minute_and_day_limits_with_xeros_headers() {
    let mut seed = seed();
    seed.config.xero_organisation_calls_per_minute = 2;
    seed.config.xero_organisation_calls_per_day = 3;
    let h = Harness::start_with(seed).await;
    let (access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;

    for (minute, day) in [("1", "2"), ("0", "1")] {
        let reply = organisation(&h, &access, Some(XERO_UK)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json()["Organisations"][0]["OrganisationID"], XERO_UK);
        assert_eq!(
            reply.header("x-minlimit-remaining").as_deref(),
            Some(minute)
        );
        assert_eq!(reply.header("x-daylimit-remaining").as_deref(), Some(day));
        assert!(reply.header("x-appminlimit-remaining").is_some());
    }
    let limited = organisation(&h, &access, Some(XERO_UK)).await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.header("x-rate-limit-problem").as_deref(),
        Some("minute")
    );
    let wait = retry_after(&limited);
    assert!((1..=60).contains(&wait), "{wait}");

    // Another organisation of the same app is not held back; calls naming none count only
    // against the app.
    assert_eq!(organisation(&h, &access, Some(XERO_NZ)).await.status, 200);
    let listed = h
        .send(Method::GET, "/connections", Some(&access), None)
        .await;
    assert_eq!(listed.status, 200);
    assert!(listed.header("x-daylimit-remaining").is_none());

    h.advance(wait as f64).await;
    let reply = organisation(&h, &access, Some(XERO_UK)).await;
    assert_eq!(reply.status, 200, "a new minute");
    assert_eq!(reply.header("x-daylimit-remaining").as_deref(), Some("0"));
    let limited = organisation(&h, &access, Some(XERO_UK)).await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.header("x-rate-limit-problem").as_deref(),
        Some("day")
    );
    assert!(retry_after(&limited) > 23 * 3600, "{}", limited.text);

    // No tenant, or one the token does not reach, is refused before anything is counted.
    assert_eq!(organisation(&h, &access, None).await.status, 403);
    let stranger = "11111111-2222-3333-4444-555555555555";
    assert_eq!(organisation(&h, &access, Some(stranger)).await.status, 403);
}

#[tokio::test]
async fn a_refresh_uses_the_organisations_calls_and_fails_when_too_few_are_left() {
    let mut seed = seed();
    seed.config.xero_calls_per_refresh = 20;
    seed.config.xero_organisation_calls_per_day = 30;
    let h = Harness::start_with(seed).await;
    let token = h.pbi_token().await;
    let (access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    let applied = h
        .set_credentials(&token, GATEWAY, DATASOURCE, &access)
        .await;
    assert_eq!(applied.status, 200, "{}", applied.text);

    assert_eq!(h.refresh_now(&token, DATASET).await.status, 202);
    let entry = h.finish_refresh(&token, DATASET).await;
    assert_eq!(entry["status"], "Completed", "{entry}");
    let left = organisation(&h, &access, Some(XERO_UK)).await;
    assert_eq!(left.header("x-daylimit-remaining").as_deref(), Some("9"));

    assert_eq!(h.refresh_now(&token, DATASET).await.status, 202);
    let entry = h.finish_refresh(&token, DATASET).await;
    assert_eq!(entry["status"], "Failed", "{entry}");
    assert_eq!(
        refresh_error_code(&entry),
        "DM_GWPipeline_Gateway_MashupDataAccessError"
    );
    assert!(entry.to_string().contains("(429)"), "{entry}");
}

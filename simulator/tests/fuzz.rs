//! Throws random paths, methods, headers and bodies at the server (a fixed-seed PRNG, so a
//! failure reproduces): it never panics or answers 5xx, and every error is well-formed JSON in
//! one of the services' error shapes.

mod common;

use common::*;
use reqwest::Method;
use serde_json::Value;

/// xorshift64*: tiny, deterministic, good enough to pick test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const SEGMENTS: &[&str] = &[
    "v1.0",
    "myorg",
    "groups",
    GROUP,
    "datasets",
    DATASET,
    PERSONS_DATASET,
    "refreshes",
    "refreshSchedule",
    "datasources",
    "Default.TakeOver",
    "gateways",
    GATEWAY,
    DATASOURCE,
    "connect",
    "token",
    "authorize",
    "revocation",
    "connections",
    "Connections",
    "_sim",
    "state",
    "faults",
    "requests",
    "clock",
    "advance",
    "xero",
    "revoke",
    "scheduled-refresh",
    "seed",
    TENANT,
    "oauth2",
    "v2.0",
    "%00",
    "%ZZ",
    "%2F",
    "..",
    ".",
    "%F0%9F%92%A5",
    "a%20b",
    "00000000-0000-0000-0000-000000000000",
    "x",
    "",
];

const BODIES: &[&str] = &[
    "",
    "{",
    "}",
    "[]",
    "null",
    "0",
    "\"x\"",
    "{\"value\":null}",
    "{\"value\":{\"days\":[1,2]}}",
    "{\"value\":{\"times\":[\"99:99\"],\"enabled\":\"no\"}}",
    "{\"notifyOption\":{}}",
    "{\"credentialDetails\":{\"credentialType\":\"OAuth2\",\"credentials\":\"{\\\"credentialData\\\":5}\",\"encryptedConnection\":\"Encrypted\",\"encryptionAlgorithm\":\"None\",\"privacyLevel\":\"None\"}}",
    "{\"seconds\":1e308}",
    "{\"seconds\":-0.0}",
    "{\"outcome\":\"Maybe\"}",
    "{\"durationSeconds\":-1}",
    "{\"status\":1000}",
    "{\"refreshToken\":null}",
    "grant_type=refresh_token&refresh_token=",
    "grant_type=authorization_code&code=x&code_verifier=y",
    "grant_type=client_credentials&scope=&client_id=",
    "a=1&a=2",
    "%%%&&==",
    "workspaces: [{id: 1, datasets: [{id: 2}]}]",
    "config: {refreshDurationSeconds: -5}",
    "{\"value\":{\"days\":[\"Monday\"],\"times\":[\"06:00\"],\"enabled\":false,\"NotifyOption\":\"NoNotification\"}}",
];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "application/json; charset=utf-8",
    "",
];

fn random_path(rng: &mut Rng) -> String {
    let mut path = String::new();
    for _ in 0..=rng.below(8) {
        path.push('/');
        if rng.chance(10) {
            let len = rng.below(30);
            path.extend((0..len).map(|_| (b'a' + (rng.below(26) as u8)) as char));
        } else {
            let segment = rng.pick_str(SEGMENTS);
            path.push_str(segment);
        }
    }
    if rng.chance(25) {
        let query = rng.pick_str(&[
            "?$top=0",
            "?$top=abc",
            "?$top=99999999999999999999",
            "?authEventId=%",
            "?a&b=&=c",
            "?client_id=x&redirect_uri=%zz",
        ]);
        path.push_str(query);
    }
    path
}

fn random_body(rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
        1 => {
            let mut body = rng.pick_str(BODIES).as_bytes().to_vec();
            if !body.is_empty() && rng.chance(50) {
                let at = rng.below(body.len());
                body[at] = rng.next() as u8;
            }
            body
        }
        _ => rng.pick_str(BODIES).as_bytes().to_vec(),
    }
}

fn well_formed_error(text: &str) -> bool {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    let s = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    s(&value["error"]["code"])          // Power BI
        || s(&value["error"])           // Entra and Xero identity
        || s(&value["Title"])           // Xero API problem
        || s(&value["message"]) // Power BI throttling
}

#[tokio::test]
async fn random_requests_get_well_formed_errors_and_never_a_crash() {
    let h = Harness::start().await;
    let token = h.pbi_token().await;
    let (xero_access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    let methods = [
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
    ];
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut errors = 0;
    for i in 0..1500 {
        let method = rng.pick(&methods).clone();
        let path = random_path(&mut rng);
        // Never wipe the tenant mid-run; every other admin call is fair game.
        if path.to_ascii_lowercase().contains("/_sim/seed")
            && method == Method::POST
            && rng.chance(90)
        {
            continue;
        }
        let url = format!("{}{path}", h.url);
        let Ok(parsed) = reqwest::Url::parse(&url) else {
            continue;
        };
        let mut request = h
            .http
            .request(method.clone(), parsed)
            .body(random_body(&mut rng));
        let content_type = rng.pick_str(CONTENT_TYPES);
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        request = match rng.below(5) {
            0 => request.bearer_auth(&token),
            1 => request.bearer_auth(&xero_access),
            2 => request.header("authorization", "Basic !!!notbase64"),
            3 => request.header("authorization", "Bearer"),
            _ => request,
        };
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {i} {method} {path}: {e}"));
        let reply = read(response).await;
        assert!(
            reply.status.as_u16() < 500,
            "request {i}: {method} {path} gave {}: {}",
            reply.status,
            reply.text
        );
        if reply.status.as_u16() >= 400 && method != Method::HEAD {
            errors += 1;
            assert!(
                well_formed_error(&reply.text),
                "request {i}: {method} {path} gave a malformed error: {:?}",
                reply.text
            );
        }
    }
    assert!(
        errors > 500,
        "the fuzzer should mostly hit errors, got {errors}"
    );
    // Still serving normally afterwards.
    assert_eq!(
        h.pbi(
            Method::GET,
            &format!("/groups/{GROUP}/datasets"),
            &h.pbi_token().await,
            None
        )
        .await
        .status,
        200
    );
}

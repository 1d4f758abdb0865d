//! The operator killed at the worst moments. One deterministic case (killed after Power BI
//! accepted a refresh and before the status recorded it) and a chaos run: the operator killed
//! with SIGKILL at random moments while refreshes are requested, refreshes fail, tokens rotate
//! and the shared Xero Secret changes. The run counts refresh tokens lost, refreshes started
//! twice for one request or failure, and requests never answered; all three must be 0.
//!
//! `make test` runs a short chaos run (`XERO_CHAOS_KILLS`, default 12); `make chaos` runs 120
//! kills. `XERO_CHAOS_SEED` replays a run (the seed is printed).

use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use reqwest::Method;
use serde_json::{Value, json};
use xero_operator::api::{Reason, XeroDataset};
use xero_operator::http::RetryPolicy;
use xero_operator::secret::SecretString;
use xero_operator::xero::{EXCHANGE_STARTED_ANNOTATION, XeroTokenEndpoint};

mod e2e_support;

use e2e_support::*;

const DATASETS: usize = 3;

fn refreshes_path(dataset: &str) -> String {
    format!("/v1.0/myorg/groups/{WORKSPACE}/datasets/{dataset}/refreshes")
}

/// The refresh history the simulator holds for `dataset`, newest first.
async fn history(s: &Scenario, dataset: &str) -> Vec<Value> {
    s.sim_dataset_by_id(dataset).await["refreshes"]
        .as_array()
        .cloned()
        .expect("the dataset's refreshes")
}

fn time_of(entry: &Value, field: &str) -> Option<Timestamp> {
    entry[field].as_str().and_then(|t| t.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_after_power_bi_accepted_a_refresh_does_not_start_it_again() {
    let mut s = Scenario::start("restart-intent", &broken_tenant_seed()).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("finance", json!({})))
        .await;
    s.start_operator();
    s.wait_reconciled("finance", Duration::from_secs(60)).await;
    let path = refreshes_path(DATASET);
    assert_eq!(s.count("POST", &path).await, 1, "the heal's refresh");

    // Power BI starts the next refresh at once, but its answer takes 30 seconds to arrive.
    s.admin(
        Method::POST,
        "faults",
        json!({"method": "POST", "pathPrefix": path, "answerDelayMs": 30_000, "times": 1}),
    )
    .await;
    s.request_refresh("finance", "r-1").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while history(&s, DATASET).await.len() < 3 {
        assert!(Instant::now() < deadline, "Power BI never got the refresh");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop_operator();
    let status = s
        .datasets()
        .get("finance")
        .await
        .expect("read")
        .status
        .expect("status");
    assert_ne!(status.last_handled_refresh_at.as_deref(), Some("r-1"));
    assert!(
        status.refresh_intent.is_some(),
        "the intent is recorded before Power BI is asked: {status:?}"
    );
    // The refresh ends while no operator runs; the next one must not start it again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while history(&s, DATASET).await[0]["status"] == "Unknown" {
        assert!(Instant::now() < deadline, "the refresh never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.start_operator();
    let xds = s
        .wait_for(
            "finance",
            "the request answered",
            Duration::from_secs(30),
            |x| {
                x.status.as_ref().is_some_and(|st| {
                    st.last_handled_refresh_at.as_deref() == Some("r-1")
                        && st.refresh_intent.is_none()
                })
            },
        )
        .await;
    s.wait_reconciled("finance", Duration::from_secs(30)).await;
    assert_eq!(
        s.count("POST", &path).await,
        2,
        "one refresh for the request, adopted after the restart"
    );
    let newest = history(&s, DATASET).await[0]["requestId"].clone();
    let recorded = xds
        .status
        .and_then(|st| st.last_refresh)
        .expect("last refresh");
    assert_eq!(json!(recorded.request_id), newest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_whose_new_token_was_never_stored_is_done_again_at_start_up() {
    let mut s = Scenario::start("restart-exchange", &broken_tenant_seed()).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("finance", json!({})))
        .await;
    s.start_operator();
    s.wait_reconciled("finance", Duration::from_secs(60)).await;
    s.stop_operator();

    // What an operator killed between Xero's answer and the Secret write leaves behind: the
    // mark of an exchange started after the last rotation, and a stored refresh token that
    // Xero has rotated (it works for the 30 minutes of grace, then never again).
    let stored = s.secret_value("xero-app", "refreshToken").await;
    let identity = reqwest::Url::parse(&s.sim.url()).expect("url");
    let endpoint =
        XeroTokenEndpoint::new(reqwest::Client::new(), &identity, RetryPolicy::default())
            .expect("endpoint");
    endpoint
        .exchange(
            XERO_CLIENT,
            &SecretString::new("xero-secret"),
            &SecretString::new(stored.clone()),
        )
        .await
        .expect("the exchange whose answer is lost");
    let mark = json!({"metadata": {"annotations": {EXCHANGE_STARTED_ANNOTATION: Timestamp::now().to_string()}}});
    s.secrets()
        .patch("xero-app", &PatchParams::default(), &Patch::Merge(&mark))
        .await
        .expect("mark");
    assert_eq!(stored_token_state(&s).await, "Rotated");

    // Nothing else is due (the chain was checked, no slot is near): only the mark makes the
    // new operator exchange the stored token again, while it still works.
    s.start_operator();
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored_token_state(&s).await != "Active" {
        assert!(
            Instant::now() < deadline,
            "the stored refresh token was not exchanged again\n{}",
            tail(&s.operator_log(), 40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_ne!(s.secret_value("xero-app", "refreshToken").await, stored);
}

/// A small deterministic random source (xorshift64*), so that a run can be replayed by seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % sides
    }
}

/// What the chaos run asked for, per dataset.
#[derive(Default, Clone)]
struct Asked {
    /// Refresh requests issued, with the simulator's time just before each.
    requests: Vec<(String, Timestamp)>,
}

/// The three figures of a run.
#[derive(Debug, PartialEq, Eq)]
struct Damage {
    tokens_lost: usize,
    started_twice: usize,
    unanswered: usize,
}

fn chaos_seed(datasets: usize) -> String {
    let mut seed: serde_yaml::Value =
        serde_yaml::from_str(&many_datasets_seed(datasets)).expect("seed");
    seed["config"]["historyRetention"] = 2000.into();
    seed["workspaces"][0]["capacity"] = "Premium".into();
    seed_text(&seed)
}

fn chaos_manifest(i: usize) -> Value {
    dataset_manifest(
        &format!("chaos-{i}"),
        json!({"dataset": {"id": dataset_id(i), "name": null}, "capacity": "Premium"}),
    )
}

/// API refreshes of one dataset started without a reason: each needs a request issued, or a
/// refresh that ended failed, after the previous API refresh of the dataset started (and not
/// after it itself started). `history` is newest first, as the simulator lists it.
fn started_without_reason(history: &[Value], requests: &[Timestamp]) -> Vec<String> {
    let failures: Vec<Timestamp> = history
        .iter()
        .filter(|r| r["status"] == "Failed")
        .filter_map(|r| time_of(r, "endTime"))
        .collect();
    let mut api: Vec<(Timestamp, String)> = history
        .iter()
        .filter(|r| r["refreshType"] == "ViaApi")
        .filter_map(|r| {
            Some((
                time_of(r, "startTime")?,
                r["requestId"].as_str()?.to_owned(),
            ))
        })
        .collect();
    api.sort();
    let mut previous: Option<Timestamp> = None;
    let mut doubles = Vec::new();
    for (started, id) in api {
        let reason = requests
            .iter()
            .chain(&failures)
            .any(|&at| previous.is_none_or(|p| at > p) && at <= started);
        if !reason {
            doubles.push(format!("{id} at {started}"));
        }
        previous = Some(started);
    }
    doubles
}

#[test]
fn a_second_start_without_a_new_reason_is_counted() {
    let entry = |id: &str, kind: &str, status: &str, start: &str, end: &str| json!({"requestId": id, "refreshType": kind, "status": status, "startTime": start, "endTime": end});
    let t = |s: &str| s.parse::<Timestamp>().expect("time");
    let history = [
        entry(
            "a3",
            "ViaApi",
            "Completed",
            "2026-01-01T00:00:09Z",
            "2026-01-01T00:00:10Z",
        ),
        entry(
            "a2",
            "ViaApi",
            "Completed",
            "2026-01-01T00:00:05Z",
            "2026-01-01T00:00:06Z",
        ),
        entry(
            "s1",
            "Scheduled",
            "Failed",
            "2026-01-01T00:00:03Z",
            "2026-01-01T00:00:04Z",
        ),
        entry(
            "a1",
            "ViaApi",
            "Completed",
            "2026-01-01T00:00:01Z",
            "2026-01-01T00:00:02Z",
        ),
    ];
    // a1 answers the request, a2 the failure of s1, a3 nothing.
    let requests = [t("2026-01-01T00:00:00Z")];
    assert_eq!(
        started_without_reason(&history, &requests),
        ["a3 at 2026-01-01T00:00:09Z"]
    );
    let requests = [t("2026-01-01T00:00:00Z"), t("2026-01-01T00:00:08Z")];
    assert!(started_without_reason(&history, &requests).is_empty());
}

/// The refresh token in the Xero Secret, as the simulator sees it: `Active` unless lost.
async fn stored_token_state(s: &Scenario) -> String {
    let token = s.secret_value("xero-app", "refreshToken").await;
    let print = powerbi_sim::fingerprint(&token);
    let state = s.admin(Method::GET, "state", json!(null)).await;
    state["xero"]["grants"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["refreshTokens"].as_array().cloned().unwrap_or_default())
        .find(|t| t["fingerprint"] == print.as_str())
        .and_then(|t| t["state"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "Unknown".to_owned())
}

/// Whether the last request issued for a dataset has been answered.
fn answered(xds: &XeroDataset, asked: &Asked) -> bool {
    let handled = xds
        .status
        .as_ref()
        .and_then(|s| s.last_handled_refresh_at.as_deref());
    asked
        .requests
        .last()
        .is_none_or(|(value, _)| Some(value.as_str()) == handled)
}

/// One random step while the operator runs: a refresh request, a failing scheduled refresh, a
/// changed Xero Secret, or a refresh whose answer is slow to come back.
async fn step(s: &Scenario, dice: &mut Dice, asked: &mut [Asked], k: usize) {
    let i = dice.roll(DATASETS as u64) as usize;
    match dice.roll(5) {
        0 | 1 => {
            let xds = s.datasets().get(&format!("chaos-{i}")).await.expect("read");
            if answered(&xds, &asked[i]) {
                let value = format!("chaos-{k}");
                let at = s.sim_now().await;
                s.request_refresh(&format!("chaos-{i}"), &value).await;
                asked[i].requests.push((value, at));
            }
        }
        2 => {
            // Refused while a refresh runs or the schedule is off; either way nothing to count.
            let _ = s
                .http
                .post(format!(
                    "{}/_sim/datasets/{}/scheduled-refresh",
                    s.sim.url(),
                    dataset_id(i)
                ))
                .json(&json!({"outcome": "Failed", "durationSeconds": 0}))
                .send()
                .await;
        }
        3 => {
            let note = json!({"stringData": {"note": format!("changed at step {k}")}});
            s.secrets()
                .patch("xero-app", &PatchParams::default(), &Patch::Merge(&note))
                .await
                .expect("change the Xero Secret");
        }
        _ => {
            let fault = json!({"method": "POST", "pathPrefix": refreshes_path(&dataset_id(i)), "answerDelayMs": 1500, "times": 1});
            s.admin(Method::POST, "faults", fault).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_the_operator_loses_no_token_starts_nothing_twice_and_answers_every_request()
 {
    let kills: usize = std::env::var("XERO_CHAOS_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let seed: u64 = std::env::var("XERO_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| Timestamp::now().as_nanosecond().unsigned_abs() as u64 | 1);
    let mut dice = Dice(seed);
    let mut s = Scenario::start("chaos", &chaos_seed(DATASETS)).await;
    s.create_secrets().await;
    for i in 0..DATASETS {
        s.apply_dataset(&chaos_manifest(i)).await;
    }
    let mut asked = vec![Asked::default(); DATASETS];
    for k in 0..kills {
        let operator = s.spawn_operator(&[]);
        step(&s, &mut dice, &mut asked, k).await;
        if dice.roll(2) == 0 {
            step(&s, &mut dice, &mut asked, k + kills).await;
        }
        tokio::time::sleep(Duration::from_millis(dice.roll(1500))).await;
        operator.kill();
    }

    // One operator for good: everything asked is answered, nothing is left half done.
    s.admin(Method::DELETE, "faults", json!(null)).await;
    s.start_operator();
    for (i, asked) in asked.iter().enumerate() {
        let name = format!("chaos-{i}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let xds = s.datasets().get(&name).await.expect("read");
            let settled = answered(&xds, asked)
                && xds
                    .status
                    .as_ref()
                    .is_some_and(|st| st.refresh_intent.is_none())
                && history(&s, &dataset_id(i)).await[0]["status"] != "Unknown";
            if settled || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let mut damage = Damage {
        tokens_lost: 0,
        started_twice: 0,
        unanswered: 0,
    };
    let token_state = stored_token_state(&s).await;
    if token_state != "Active" {
        damage.tokens_lost += 1;
    }
    let mut doubles = Vec::new();
    let mut requests_issued = 0;
    for (i, asked) in asked.iter().enumerate() {
        let xds = s.datasets().get(&format!("chaos-{i}")).await.expect("read");
        if !answered(&xds, asked) {
            damage.unanswered += 1;
        }
        let rejected = xds.status.iter().flat_map(|st| &st.conditions).any(|c| {
            c.reason == Reason::XeroRefreshTokenRejected.as_str()
                || c.reason == Reason::XeroAppRejected.as_str()
        });
        damage.tokens_lost += usize::from(rejected);
        let times: Vec<Timestamp> = asked.requests.iter().map(|(_, at)| *at).collect();
        requests_issued += times.len();
        for double in started_without_reason(&history(&s, &dataset_id(i)).await, &times) {
            doubles.push(format!("chaos-{i}: {double}"));
        }
    }
    damage.started_twice = doubles.len();
    let mut api_refreshes = 0;
    for i in 0..DATASETS {
        api_refreshes += s.count("POST", &refreshes_path(&dataset_id(i))).await;
    }
    println!(
        "chaos: {kills} kills (seed {seed}), {requests_issued} requests, {api_refreshes} refresh POSTs: \
         refresh tokens lost {}, refreshes started twice {}, requests unanswered {}",
        damage.tokens_lost, damage.started_twice, damage.unanswered
    );
    assert_eq!(
        damage,
        Damage {
            tokens_lost: 0,
            started_twice: 0,
            unanswered: 0
        },
        "seed {seed}; stored token {token_state}; started twice: {doubles:?}\n{}",
        tail(&s.operator_log(), 80)
    );
}

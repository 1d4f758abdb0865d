//! Leader election on a real API server: one leader at a time, hand-over on release, take-over
//! after a leader dies.

use std::time::Duration;

use tokio::sync::watch;
use xero_operator::leader::{ElectionEnd, LeaseSettings, run_election};
use xero_testbed::TestEnv;

struct Replica {
    leading: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<ElectionEnd>,
}

fn replica(env: &TestEnv, identity: &str) -> Replica {
    let mut settings = LeaseSettings::new(&env.namespace, "xero-operator", identity);
    settings.lease_duration = Duration::from_secs(2);
    settings.retry_period = Duration::from_millis(200);
    let (leading_tx, leading) = watch::channel(false);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(run_election(
        env.client.clone(),
        settings,
        leading_tx,
        stop_rx,
    ));
    Replica {
        leading,
        stop,
        task,
    }
}

async fn wait_leading(replica: &mut Replica, within: Duration) {
    tokio::time::timeout(within, replica.leading.wait_for(|l| *l))
        .await
        .expect("became leader in time")
        .expect("election running");
}

#[tokio::test]
async fn one_leader_at_a_time_with_hand_over_and_take_over() {
    xero_operator::telemetry::install_crypto_provider();
    let env = TestEnv::new("leader").await;

    let mut a = replica(&env, "a");
    wait_leading(&mut a, Duration::from_secs(10)).await;
    let mut b = replica(&env, "b");
    // b keeps retrying for several lease renewals without ever leading while a renews.
    let b_led = tokio::time::timeout(Duration::from_secs(3), b.leading.wait_for(|l| *l))
        .await
        .is_ok();
    assert!(!b_led, "b led while a held a live lease");

    // a shuts down and releases: b leads well before the lease would have expired.
    a.stop.send(true).expect("stop a");
    assert_eq!(a.task.await.expect("a ended"), ElectionEnd::Stopped);
    wait_leading(&mut b, Duration::from_secs(1)).await;

    // b dies without releasing: c takes over once the lease expires.
    let mut c = replica(&env, "c");
    b.task.abort();
    wait_leading(&mut c, Duration::from_secs(6)).await;
    c.stop.send(true).expect("stop c");
    assert_eq!(c.task.await.expect("c ended"), ElectionEnd::Stopped);
}

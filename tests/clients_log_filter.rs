//! kube-client logs the whole body of an answer it cannot decode, which for a Secret is its
//! data. An API server (a stand-in: a real one never sends an undecodable Secret) answers a
//! Secret read with data that is not base64: under the operator's log filter the value never
//! reaches the log or the error, while without the filter it would. A test binary of its own,
//! because it installs log subscribers.

mod clients_support;

use clients_support::Capture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use xero_operator::error::ErrorCategory;
use xero_operator::secret_store::{SecretAccess, SecretStore};
use xero_operator::telemetry::filter_directives;

const VALUE: &str = "refresh-token-value-that-must-not-be-logged";

/// Answers every request on a loopback port with a Secret whose data is not base64.
async fn undecodable_secret_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let body = format!(
        r#"{{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"xero-app","namespace":"finance","resourceVersion":"7"}},"data":{{"refreshToken":"{VALUE} !"}}}}"#
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = vec![0_u8; 8192];
                let _ = stream.read(&mut request).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("http://{address}")
}

/// Reads the Secret with a log subscriber of `directives` for this thread; the log and the
/// error's message.
async fn read_logged(url: &str, directives: &str) -> (String, String) {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(directives))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let config = kube::Config::new(url.parse().expect("url"));
    let client = kube::Client::try_from(config).expect("client");
    let error = SecretStore::new(client)
        .read("finance", "xero-app")
        .await
        .expect_err("the Secret does not decode");
    assert_eq!(error.category(), ErrorCategory::SecretAccessFailed);
    (capture.text(), error.message().to_owned())
}

// One thread: the subscriber set for it sees the client's connection task too.
#[tokio::test(flavor = "current_thread")]
async fn an_undecodable_secret_stays_out_of_the_log_and_the_error() {
    xero_operator::telemetry::install_crypto_provider();
    let url = undecodable_secret_server().await;

    // Without the operator's filter kube-client writes the body, value and all.
    let (unfiltered, _) = read_logged(&url, "trace").await;
    assert!(
        unfiltered.contains(VALUE),
        "kube-client no longer logs undecodable bodies; the filter may be dropped:\n{unfiltered}"
    );

    for level in ["info", "debug", "trace", "debug,xero_operator=trace"] {
        let (log, message) = read_logged(&url, &filter_directives(level)).await;
        assert!(!log.contains(VALUE), "--log-level {level}:\n{log}");
        assert!(!message.contains(VALUE), "{message}");
        assert!(message.contains("finance/xero-app"), "{message}");
    }
}

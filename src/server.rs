//! The operator's HTTP endpoints: `/metrics`, `/livez`, `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// Whether the operator is ready: once every XeroDataset watch (one per watched namespace, or
/// one for the cluster) has listed and cached its objects. With leader election a standby is
/// ready at once; whether this replica may act is separate.
#[derive(Debug)]
pub struct Readiness {
    /// Watches whose initial list is not synced yet.
    unsynced: AtomicUsize,
}

impl Readiness {
    /// Ready after `watches` watches have each synced their initial list.
    pub fn after_watches(watches: usize) -> Self {
        Readiness {
            unsynced: AtomicUsize::new(watches),
        }
    }

    /// Ready now, whatever the watches do.
    pub fn set_ready(&self) {
        self.unsynced.store(0, Ordering::Release);
    }

    /// One watch has synced its initial list (each watch reports it once); true when that made
    /// the operator ready.
    pub fn watch_synced(&self) -> bool {
        let before = self
            .unsynced
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        before == Ok(1)
    }

    pub fn is_ready(&self) -> bool {
        self.unsynced.load(Ordering::Acquire) == 0
    }
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

/// The router of the endpoints.
pub fn router(metrics: Arc<Metrics>, readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(Shared { metrics, readiness })
}

async fn render_metrics(State(shared): State<Shared>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.render(),
    )
}

async fn ready(State(shared): State<Shared>) -> impl IntoResponse {
    if shared.readiness.is_ready() {
        (StatusCode::OK, "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the initial list of XeroDatasets is not synced yet",
        )
    }
}

/// What the endpoints' server allows. Prometheus and the kubelet make one short request at a
/// time, so a few connections, seconds for a request head and a short life per connection are
/// plenty; whoever opens connections and holds them cannot take the pod's memory.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Connections served at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Time to send a request's head (a slow client is cut off).
    pub header_read_timeout: Duration,
    /// Longest life of a connection, kept alive or not.
    pub connection_lifetime: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 32,
            header_read_timeout: Duration::from_secs(5),
            connection_lifetime: Duration::from_secs(60),
        }
    }
}

/// Binds `addr` and serves the endpoints until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /livez and /readyz");
    serve_on(
        listener,
        router(metrics, readiness),
        ServerLimits::default(),
        shutdown,
    )
    .await;
    Ok(())
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::debug!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Over the limit the connection is closed at once.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(limits.connection_lifetime, connection).await;
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    /// Sends a request for `/livez` on `stream`; what came back before the server closed it or
    /// a second passed.
    async fn livez(stream: &mut TcpStream) -> String {
        let _ = stream
            .write_all(b"GET /livez HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn idle_and_surplus_connections_are_closed_and_the_endpoints_still_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let limits = ServerLimits {
            max_connections: 2,
            header_read_timeout: Duration::from_secs(1),
            connection_lifetime: Duration::from_secs(5),
        };
        let app = router(
            Arc::new(Metrics::default()),
            Arc::new(Readiness::after_watches(0)),
        );
        tokio::spawn(serve_on(listener, app, limits, std::future::pending()));

        // Two connections that never send a request take both slots...
        let mut idle = [
            TcpStream::connect(addr).await.expect("connect"),
            TcpStream::connect(addr).await.expect("connect"),
        ];
        tokio::time::sleep(Duration::from_millis(50)).await;
        // ...so a third is closed unanswered,
        let mut surplus = TcpStream::connect(addr).await.expect("connect");
        assert_eq!(livez(&mut surplus).await, "");
        // and the idle ones are cut off once the header-read timeout passes.
        for stream in &mut idle {
            let mut buffer = [0u8; 64];
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await;
            assert!(
                matches!(read, Ok(Ok(_)) | Ok(Err(_))),
                "an idle connection stayed open"
            );
        }
        let mut fresh = TcpStream::connect(addr).await.expect("connect");
        let answer = livez(&mut fresh).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[test]
    fn ready_only_after_every_watch_synced() {
        let readiness = Readiness::after_watches(3);
        assert!(!readiness.watch_synced());
        assert!(!readiness.is_ready(), "one namespace of three synced");
        assert!(!readiness.watch_synced());
        assert!(!readiness.is_ready(), "two namespaces of three synced");
        assert!(readiness.watch_synced(), "the last one makes it ready");
        assert!(readiness.is_ready());
        assert!(!readiness.watch_synced(), "ready once, never below zero");
        assert!(readiness.is_ready());
    }

    #[test]
    fn a_standby_is_ready_at_once() {
        let readiness = Readiness::after_watches(2);
        readiness.set_ready();
        assert!(readiness.is_ready());
        assert!(!readiness.watch_synced());
    }
}

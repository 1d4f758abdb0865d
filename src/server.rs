//! The operator's HTTP endpoints: `/metrics`, `/livez`, `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Binds `addr` and serves the endpoints until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /livez and /readyz");
    axum::serve(listener, router(metrics, readiness))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::Readiness;

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

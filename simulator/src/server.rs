//! The HTTP side: one loopback listener for all services, faults and the request log around
//! the synchronous service code.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::http::{SimRequest, SimResponse};
use crate::routes::{Route, Service};
use crate::seed::Seed;
use crate::state::World;
use crate::state::traffic::{FaultSpec, ServedRequest};
use crate::{admin, entra, powerbi, xero};

/// Largest request body read; the real services accept far less for these operations.
const BODY_LIMIT: usize = 1024 * 1024;

/// How often (real time) Power BI's scheduler looks at the virtual clock when nothing else
/// happens: a scheduled refresh starts at most this long after it was due, credentials-wise.
const SCHEDULER_TICK: Duration = Duration::from_millis(100);

struct Shared {
    world: Mutex<World>,
}

impl Shared {
    /// The state; a panic elsewhere while holding the lock must not wedge the simulator.
    fn world(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Entry point for running the simulator in-process.
#[derive(Debug, Clone, Copy)]
pub struct Simulator;

impl Simulator {
    /// Binds `listen` (a loopback address; port 0 picks a free one), loads the seed and serves
    /// in a background task until the returned handle is shut down or dropped.
    pub async fn start(listen: SocketAddr, seed: Seed) -> Result<RunningSimulator, Error> {
        if !listen.ip().is_loopback() {
            return Err(Error::NotLoopback(listen));
        }
        let world = World::from_seed(seed)?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| Error::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: listen,
            source,
        })?;
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
        });
        let ticker = {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SCHEDULER_TICK);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    shared.world().tick();
                }
            })
        };
        let app = Router::new().fallback(serve_request).with_state(shared);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "simulator server stopped");
            }
        });
        tracing::info!(%addr, "simulator listening");
        Ok(RunningSimulator {
            addr,
            stop: Some(stop),
            task: Some(task),
            ticker,
        })
    }
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningSimulator {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    ticker: JoinHandle<()>,
}

impl RunningSimulator {
    /// Base URL, `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting requests and waits (briefly) for open ones to finish.
    pub async fn shutdown(mut self) {
        self.ticker.abort();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        self.ticker.abort();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve_request(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let route = Route::parse(&path);
    let service = route.service();
    let method = parts.method.clone();
    let unstated_length = states_no_length(&parts);

    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        let response = powerbi::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "The request body is too large.",
        );
        record(
            &mut shared.world(),
            service,
            &method,
            &path,
            query.as_deref(),
            &response,
            false,
        );
        return response.into_response();
    };
    let req = SimRequest {
        method: parts.method,
        path,
        query,
        headers: parts.headers,
        body,
    };

    let fault = if service == Service::Admin {
        None
    } else {
        shared
            .world()
            .traffic
            .take_fault(req.method.as_str(), &req.path)
    };
    if let Some(delay) = fault.as_ref().and_then(|f| f.delay_ms) {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }

    let response = {
        let mut world = shared.world();
        let mut response = respond(&mut world, &req, &route, fault.as_ref(), unstated_length);
        if let Some(fault) = &fault {
            response = finish_faulted(response, fault);
        }
        record(
            &mut world,
            service,
            &req.method,
            &req.path,
            req.query.as_deref(),
            &response,
            fault.is_some(),
        );
        response
    };
    if let Some(delay) = fault.as_ref().and_then(|f| f.answer_delay_ms) {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    tracing::debug!(method = %req.method, path = %req.path, status = response.status.as_u16(), "served");
    response.into_response()
}

/// The answer to `req`: the fault's error, 411 for a Power BI POST of unstated length, or what
/// the route serves.
fn respond(
    world: &mut World,
    req: &SimRequest,
    route: &Route,
    fault: Option<&FaultSpec>,
    unstated_length: bool,
) -> SimResponse {
    let service = route.service();
    if let Some(status) = fault.and_then(|f| f.status) {
        return faulted(
            world,
            service,
            status,
            fault.and_then(|f| f.retry_after_seconds),
        );
    }
    if unstated_length && service == Service::PowerBi && world.config.require_content_length {
        return length_required();
    }
    world.settle();
    dispatch(world, req, route)
}

/// Whether the request is a POST over HTTP/1.1 that states no length (no `Content-Length`, no
/// `Transfer-Encoding`).
fn states_no_length(parts: &axum::http::request::Parts) -> bool {
    use axum::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    parts.method == Method::POST
        && parts.version == axum::http::Version::HTTP_11
        && !parts.headers.contains_key(CONTENT_LENGTH)
        && !parts.headers.contains_key(TRANSFER_ENCODING)
}

/// What several Microsoft front ends answer to a POST of unstated length (the body is a guess).
fn length_required() -> SimResponse {
    powerbi::error(
        StatusCode::LENGTH_REQUIRED,
        "LengthRequired",
        "Length Required: the request must state its length (Content-Length).",
    )
}

/// Adds a fault's `Retry-After` (unless the response has one) and truncates the body if the
/// fault says so.
fn finish_faulted(mut response: SimResponse, fault: &FaultSpec) -> SimResponse {
    if let Some(retry) = fault.retry_after_seconds
        && !response.headers.iter().any(|(k, _)| k == "retry-after")
    {
        response = response.with_header("retry-after", &retry.to_string());
    }
    if fault.malformed_body {
        response.malform();
    }
    response
}

/// Logs a request to a service; the admin API's own requests stay out of the log.
fn record(
    world: &mut World,
    service: Service,
    method: &Method,
    path: &str,
    query: Option<&str>,
    response: &SimResponse,
    fault: bool,
) {
    if service != Service::Admin {
        world.log_request(ServedRequest {
            service: service.name(),
            method: method.as_str(),
            path,
            query,
            status: response.status.as_u16(),
            principal: response.principal.as_deref(),
            fault,
        });
    }
}

fn dispatch(world: &mut World, req: &SimRequest, route: &Route) -> SimResponse {
    let method = &req.method;
    match route {
        Route::EntraToken(tenant) if method == Method::POST => entra::token(world, req, tenant),
        Route::PowerBi(path) => powerbi::handle(world, req, path),
        Route::XeroToken if method == Method::POST => xero::token(world, req),
        Route::XeroAuthorize if method == Method::GET => xero::authorize(world, req),
        Route::XeroRevocation if method == Method::POST => xero::revocation(world, req),
        Route::XeroConnections if method == Method::GET => xero::connections(world, req),
        Route::XeroOrganisation if method == Method::GET => xero::organisation(world, req),
        Route::XeroConnection(id) if method == Method::DELETE => {
            xero::delete_connection(world, req, id)
        }
        Route::Admin(path) => admin::handle(world, req, path),
        Route::Unknown => powerbi::error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!(
                "No HTTP resource was found that matches the request URI '{}'.",
                clip(&req.path)
            ),
        )
        .with_header("RequestId", &uuid::Uuid::new_v4().to_string()),
        _ => method_not_allowed(world, route.service(), method),
    }
}

fn method_not_allowed(world: &World, service: Service, method: &Method) -> SimResponse {
    let message = format!("The requested resource does not support http method '{method}'.");
    match service {
        Service::Entra => entra::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            900561,
            &message,
            world.now(),
        ),
        Service::XeroIdentity => {
            xero::token_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request")
        }
        Service::XeroApi => xero::problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
            &message,
        ),
        Service::PowerBi | Service::Admin => {
            powerbi::error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", &message)
        }
    }
}

/// The response of a fault with a status, in the addressed service's error shape.
fn faulted(world: &World, service: Service, status: u16, retry_after: Option<u64>) -> SimResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Error");
    if status.as_u16() < 400 {
        return SimResponse::json(status, &serde_json::json!({}));
    }
    match service {
        Service::PowerBi | Service::Admin => if status == StatusCode::TOO_MANY_REQUESTS {
            powerbi::throttled(retry_after.unwrap_or(1))
        } else {
            let code: String = reason.split_whitespace().collect();
            powerbi::error(
                status,
                &code,
                "A fault injected through the simulator's admin API.",
            )
        }
        .with_header("RequestId", &uuid::Uuid::new_v4().to_string()),
        Service::Entra => {
            let error = match status.as_u16() {
                401 => "invalid_client",
                429 | 500.. => "temporarily_unavailable",
                _ => "invalid_request",
            };
            entra::error(
                status,
                error,
                90033,
                "A transient error has occurred. Please try again.",
                world.now(),
            )
        }
        Service::XeroIdentity => {
            let error = match status.as_u16() {
                400 => "invalid_grant",
                401 => "invalid_client",
                _ => "temporarily_unavailable",
            };
            xero::token_error(status, error)
        }
        Service::XeroApi => xero::problem(
            status,
            reason,
            "A fault injected through the simulator's admin API.",
        ),
    }
}

fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

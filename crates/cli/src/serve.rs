//! `lanceflow serve`: the retrieval service over HTTP (axum).
//!
//! The engine's [`Retriever`] does the work; this module is the HTTP front
//! end: routes, JSON bodies, status codes, access control, limits, request
//! ids, timeouts and graceful shutdown.
//!
//! | route | what |
//! |---|---|
//! | `GET /health` | liveness; never needs a key |
//! | `POST /v1/search` | a [`RetrievalRequest`] → a [`RetrievalResponse`] |
//! | `GET /v1/info` | the served version, its indexes, the model |
//! | `POST /v1/refresh` | serve the latest version (requests in flight finish on theirs) |
//! | `GET /openapi.json` | the OpenAPI document (`crates/cli/openapi.json`) |

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use lanceflow::search::retrieval::{RetrievalRequest, Retriever};
use lanceflow::ErrorKind;
use tokio::sync::Semaphore;

/// The OpenAPI document of this service, kept in the repository.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Limits and access control of a service.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Bearer token every route but `/health` requires (None: open).
    pub api_key: Option<String>,
    /// Requests handled at once; more get 503 with `Retry-After`.
    pub max_concurrency: usize,
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// A request running longer gets 504.
    pub request_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            api_key: None,
            max_concurrency: 64,
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Shared state of every request.
#[derive(Clone)]
pub struct ServeState {
    inner: Arc<Inner>,
}

struct Inner {
    retriever: Arc<Retriever>,
    api_key: Option<Vec<u8>>,
    limiter: Arc<Semaphore>,
    options: ServeOptions,
    next_id: AtomicU64,
    id_prefix: String,
}

/// A request's id: in the `x-request-id` response header, in error bodies
/// and in the server's log lines about it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl ServeState {
    /// State for a service over `retriever`.
    pub fn new(retriever: Arc<Retriever>, options: ServeOptions) -> Self {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                retriever,
                api_key: options.api_key.clone().map(String::into_bytes),
                limiter: Arc::new(Semaphore::new(options.max_concurrency)),
                options,
                next_id: AtomicU64::new(1),
                id_prefix: format!("{:x}", started & 0xff_ffff_ffff),
            }),
        }
    }

    /// The concurrency limiter (tests hold its permits to provoke a 503).
    pub fn limiter(&self) -> Arc<Semaphore> {
        self.inner.limiter.clone()
    }

    /// The service's routes.
    pub fn router(&self) -> Router {
        let guarded = Router::new()
            .route("/v1/search", post(search))
            .route("/v1/info", get(info))
            .route("/v1/refresh", post(refresh))
            .route("/openapi.json", get(openapi))
            .route_layer(from_fn_with_state(self.clone(), limit))
            .route_layer(from_fn_with_state(self.clone(), authorize));
        Router::new()
            .route("/health", get(health))
            .merge(guarded)
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(self.inner.options.max_body_bytes))
            .layer(from_fn_with_state(self.clone(), request_id))
            .with_state(self.clone())
    }
}

/// The `kind` of an HTTP error body: an engine failure's own kind, or one
/// of the service's refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The engine failed (its kind travels as it is).
    Engine(ErrorKind),
    /// The body is not a valid request.
    InvalidRequest,
    /// The request took longer than the request timeout.
    Timeout,
    /// No or a wrong API key.
    Unauthorized,
    /// Too many requests at once.
    Overloaded,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::Engine(kind) => kind.as_str(),
            Refusal::InvalidRequest => "invalid_request",
            Refusal::Timeout => "timeout",
            Refusal::Unauthorized => "unauthorized",
            Refusal::Overloaded => "overloaded",
        }
    }
}

/// An error answer: `{"error": {"kind", "message"}, "request_id"}`.
fn error_response(status: StatusCode, kind: Refusal, message: &str, id: &RequestId) -> Response {
    let body = serde_json::json!({
        "error": { "kind": kind.as_str(), "message": message },
        "request_id": id.0,
    });
    (status, Json(body)).into_response()
}

/// Engine errors: the caller's mistakes are 4xx with the engine's message;
/// everything else is a 5xx with a generic body (details go to the log).
fn engine_error(err: lanceflow::Error, id: &RequestId) -> Response {
    use lanceflow::Error as E;
    let status = match &err {
        E::InvalidInput(_) | E::NotSupported(_) => StatusCode::BAD_REQUEST,
        E::NotFound(_) => StatusCode::NOT_FOUND,
        E::AlreadyExists(_) | E::CommitConflict(_) => StatusCode::CONFLICT,
        E::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        E::TasksFailed { .. } | E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status.is_server_error() {
        tracing::error!(request_id = %id.0, kind = err.kind().as_str(), "request failed: {err}");
        let mut response = error_response(
            status,
            Refusal::Engine(err.kind()),
            &format!(
                "the server could not answer; it logged the cause under request id {}",
                id.0
            ),
            id,
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        return response;
    }
    error_response(status, Refusal::Engine(err.kind()), &err.to_string(), id)
}

async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn not_found(Extension(id): Extension<RequestId>) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        Refusal::Engine(ErrorKind::NotFound),
        "no such route; see /openapi.json",
        &id,
    )
}

async fn search(
    State(state): State<ServeState>,
    Extension(id): Extension<RequestId>,
    body: Result<Json<RetrievalRequest>, JsonRejection>,
) -> Response {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => {
            return error_response(
                rejection.status(),
                Refusal::InvalidRequest,
                &rejection.body_text(),
                &id,
            )
        }
    };
    let timeout = state.inner.options.request_timeout;
    match tokio::time::timeout(timeout, state.inner.retriever.search(&request)).await {
        Ok(Ok(response)) => Json(response).into_response(),
        Ok(Err(err)) => engine_error(err, &id),
        Err(_) => {
            tracing::warn!(request_id = %id.0, "request timed out after {timeout:?}");
            error_response(
                StatusCode::GATEWAY_TIMEOUT,
                Refusal::Timeout,
                &format!(
                    "the search took longer than {} s; lower k or nprobes, or add a filter",
                    timeout.as_secs_f64()
                ),
                &id,
            )
        }
    }
}

async fn info(State(state): State<ServeState>, Extension(id): Extension<RequestId>) -> Response {
    match state.inner.retriever.info().await {
        Ok(info) => Json(info).into_response(),
        Err(err) => engine_error(err, &id),
    }
}

async fn refresh(State(state): State<ServeState>, Extension(id): Extension<RequestId>) -> Response {
    match state.inner.retriever.refresh().await {
        Ok(refresh) => Json(refresh).into_response(),
        Err(err) => engine_error(err, &id),
    }
}

/// Give every request an id, and log it with its status and duration.
async fn request_id(State(state): State<ServeState>, mut request: Request, next: Next) -> Response {
    let n = state.inner.next_id.fetch_add(1, Ordering::Relaxed);
    let id = RequestId(format!("{}-{n}", state.inner.id_prefix));
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    request.extensions_mut().insert(id.clone());
    let started = Instant::now();
    let mut response = next.run(request).await;
    tracing::debug!(
        request_id = %id.0,
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1e3,
        "request"
    );
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// A request turned away before it reaches a handler: the error body plus
/// the header that tells the client what to do (`WWW-Authenticate`,
/// `Retry-After`).
fn refuse(
    request: &Request,
    status: StatusCode,
    kind: Refusal,
    message: &str,
    (name, value): (header::HeaderName, &'static str),
) -> Response {
    let id = request
        .extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(|| RequestId(String::new()));
    let mut response = error_response(status, kind, message, &id);
    response
        .headers_mut()
        .insert(name, HeaderValue::from_static(value));
    response
}

/// `Authorization: Bearer KEY` on every guarded route when a key is set.
async fn authorize(State(state): State<ServeState>, request: Request, next: Next) -> Response {
    if let Some(key) = &state.inner.api_key {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), key)) {
            return refuse(
                &request,
                StatusCode::UNAUTHORIZED,
                Refusal::Unauthorized,
                "send the service's API key as `Authorization: Bearer <key>`",
                (header::WWW_AUTHENTICATE, "Bearer"),
            );
        }
    }
    next.run(request).await
}

/// At most `max_concurrency` requests at once; the rest are turned away at
/// once with 503 and `Retry-After` instead of queueing without bound.
async fn limit(State(state): State<ServeState>, request: Request, next: Next) -> Response {
    let Ok(permit) = state.inner.limiter.clone().try_acquire_owned() else {
        return refuse(
            &request,
            StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Overloaded,
            &format!(
                "the service is answering {} requests already; retry shortly",
                state.inner.options.max_concurrency
            ),
            (header::RETRY_AFTER, "1"),
        );
    };
    let response = next.run(request).await;
    drop(permit);
    response
}

/// Byte comparison whose time depends on the key's length only, not on
/// where the first difference is.
fn constant_time_eq(given: &[u8], key: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != key.len());
    for (i, k) in key.iter().enumerate() {
        diff |= given.get(i).copied().unwrap_or(0) ^ k;
    }
    std::hint::black_box(diff) == 0
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

/// Serve on `listener` until `shutdown` resolves; requests in flight finish.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: ServeState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, state.router())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Bind `addr` (a clear error when it is taken or not an address here).
pub async fn bind(addr: &str) -> lanceflow::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        lanceflow::Error::InvalidInput(format!(
            "cannot listen on {addr}: {e}; choose another --addr HOST:PORT (port 0 picks a free one)"
        ))
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| lanceflow::Error::Internal(format!("listening address: {e}")))?;
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secreT", b"secret"));
        assert!(!constant_time_eq(b"secret1", b"secret"));
        assert!(!constant_time_eq(b"secre", b"secret"));
        assert!(!constant_time_eq(b"", b"secret"));
    }

    #[test]
    fn openapi_request_schema_lists_exactly_the_request_fields() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let documented: std::collections::BTreeSet<String> = doc["components"]["schemas"]
            ["SearchRequest"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let full = RetrievalRequest {
            query: Some("q".into()),
            vector: Some(vec![0.0]),
            mode: lanceflow::search::retrieval::Mode::Hybrid,
            k: 3,
            filter: Some("a > 1".into()),
            nprobes: Some(1),
            refine_factor: Some(1),
            columns: Some(vec![]),
            version: Some(1),
            fusion: Some(lanceflow::search::hybrid::Fusion::Rrf),
            weights: Some(vec![1.0, 1.0]),
        };
        let actual: std::collections::BTreeSet<String> = serde_json::to_value(&full)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(documented, actual);
    }

    #[test]
    fn openapi_document_is_json_with_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        for path in [
            "/health",
            "/v1/search",
            "/v1/info",
            "/v1/refresh",
            "/openapi.json",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
    }
}

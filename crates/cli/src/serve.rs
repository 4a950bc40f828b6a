//! `lanceflow serve`: the retrieval service over HTTP (axum on hyper).
//!
//! The engine's [`Retriever`] does the work; this module is the HTTP front
//! end: routes, JSON bodies, status codes, access control, limits, request
//! ids, timeouts and graceful shutdown.
//!
//! What keeps it alive under any request:
//! - the engine bounds every number and checks every filter before work
//!   ([`lanceflow::limits`]);
//! - searches run on a runtime of their own ([`SearchPool`]), so CPU-heavy
//!   requests never starve `/health` or the accept loop, and a request that
//!   times out or whose client leaves is aborted there;
//! - one deadline covers a request's body, its search and its response; the
//!   concurrency limit turns the excess away with 503;
//! - connections: a cap, a header-read timeout that is also the keep-alive
//!   idle timeout, and a drain deadline at shutdown;
//! - a panic in a handler becomes a 500 with the request id;
//! - error bodies name request fields and never carry server paths.
//!
//! | route | what |
//! |---|---|
//! | `GET /health` | liveness; never needs a key |
//! | `POST /v1/search` | a [`RetrievalRequest`] → a [`RetrievalResponse`] |
//! | `GET /v1/info` | the served version, its indexes, the model |
//! | `POST /v1/refresh` | serve the latest version (requests in flight finish on theirs) |
//! | `GET /openapi.json` | the OpenAPI document (`crates/cli/openapi.json`) |

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

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
    /// A request running longer (body, search and response) gets 504.
    pub request_timeout: Duration,
    /// Open connections at most; more are closed at once.
    pub max_connections: usize,
    /// A connection that sends no complete request head for this long (a
    /// new one, or a kept-alive one between requests) is closed.
    pub header_timeout: Duration,
    /// Largest response body; a larger answer is refused with 400.
    pub max_response_bytes: usize,
    /// Threads of the search runtime (0: one per core).
    pub search_threads: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            api_key: None,
            max_concurrency: 64,
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024 * 1024,
            search_threads: 0,
        }
    }
}

/// The runtime searches run on, apart from the one that accepts
/// connections and answers `/health`. Dropping it stops its threads without
/// waiting (safe inside an async context).
pub struct SearchPool {
    runtime: Option<tokio::runtime::Runtime>,
}

impl SearchPool {
    /// A pool of `threads` threads (0: one per core), each with an 8 MiB
    /// stack (DataFusion walks filter expressions recursively).
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("lanceflow-search")
            .thread_stack_size(8 * 1024 * 1024)
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Run `work` on the pool; the work is aborted when the returned future
    /// is dropped (a timeout, a client gone). A panic comes back as `Err`.
    async fn run<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, String> {
        let Some(runtime) = &self.runtime else {
            return Err("the search pool has stopped".into());
        };
        let mut task = AbortOnDrop(runtime.spawn(work));
        match (&mut task.0).await {
            Ok(value) => Ok(value),
            Err(e) if e.is_panic() => Err(panic_message(e.into_panic())),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Drop for SearchPool {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Shared state of every request.
#[derive(Clone)]
pub struct ServeState {
    inner: Arc<Inner>,
}

struct Inner {
    retriever: Arc<Retriever>,
    pool: SearchPool,
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
    /// State for a service over `retriever`, with its own search pool.
    pub fn new(retriever: Arc<Retriever>, options: ServeOptions) -> std::io::Result<Self> {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or_default();
        Ok(Self {
            inner: Arc::new(Inner {
                retriever,
                pool: SearchPool::new(options.search_threads)?,
                api_key: options.api_key.clone().map(String::into_bytes),
                limiter: Arc::new(Semaphore::new(options.max_concurrency)),
                options,
                next_id: AtomicU64::new(1),
                id_prefix: format!("{:x}", started & 0xff_ffff_ffff),
            }),
        })
    }

    /// The service's limits.
    pub fn options(&self) -> &ServeOptions {
        &self.inner.options
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
            .route_layer(from_fn_with_state(self.clone(), deadline))
            .route_layer(from_fn_with_state(self.clone(), limit))
            .route_layer(from_fn_with_state(self.clone(), authorize));
        Router::new()
            .route("/health", get(health))
            .merge(guarded)
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(self.inner.options.max_body_bytes))
            .layer(axum::middleware::from_fn(catch_panic))
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

/// Engine errors: the caller's mistakes are 4xx with the engine's message
/// (the dataset's URI replaced: a client learns no server path); everything
/// else is a 5xx with a generic body (details go to the log).
fn engine_error(err: lanceflow::Error, uri: &str, id: &RequestId) -> Response {
    use lanceflow::Error as E;
    let status = match &err {
        E::InvalidInput(_) | E::NotSupported(_) => StatusCode::BAD_REQUEST,
        E::NotFound(_) => StatusCode::NOT_FOUND,
        E::AlreadyExists(_) | E::CommitConflict(_) => StatusCode::CONFLICT,
        E::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        E::TasksFailed { .. } | E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status.is_server_error() {
        let mut response = server_failure(status, err.kind(), &err.to_string(), id);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        return response;
    }
    let message = without_uri(&err.to_string(), uri);
    error_response(status, Refusal::Engine(err.kind()), &message, id)
}

/// `message` with the served dataset's URI (and its local path, for a
/// `file://` URI) replaced by "the dataset".
fn without_uri(message: &str, uri: &str) -> String {
    let mut text = message.to_string();
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    for needle in [uri, path] {
        if needle.len() > 1 {
            text = text.replace(needle, "the dataset");
        }
    }
    text
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

async fn method_not_allowed(Extension(id): Extension<RequestId>) -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        Refusal::InvalidRequest,
        "this route does not take that method; see /openapi.json",
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
    let retriever = state.inner.retriever.clone();
    let limit = state.inner.options.max_response_bytes;
    let answered = state
        .inner
        .pool
        .run(async move {
            let response = retriever.search(&request).await?;
            // Serialized once, on the pool: the body is these bytes.
            serde_json::to_vec(&response).map_err(lanceflow::Error::from)
        })
        .await;
    match answered {
        Ok(Ok(body)) if body.len() > limit => error_response(
            StatusCode::BAD_REQUEST,
            Refusal::InvalidRequest,
            &format!(
                "the answer would be {} bytes, over this service's limit of {limit}; ask for fewer hits (\"k\") or fewer \"columns\"",
                body.len()
            ),
            &id,
        ),
        Ok(Ok(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(Err(err)) => engine_error(err, &uri(&state), &id),
        Err(panic) => internal_error(&panic, &id),
    }
}

fn uri(state: &ServeState) -> String {
    state.inner.retriever.location().uri().to_string()
}

/// A 5xx: the cause goes to the log, the client gets the request id.
fn server_failure(status: StatusCode, kind: ErrorKind, cause: &str, id: &RequestId) -> Response {
    tracing::error!(request_id = %id.0, kind = kind.as_str(), "request failed: {cause}");
    error_response(
        status,
        Refusal::Engine(kind),
        &format!(
            "the server could not answer; it logged the cause under request id {}",
            id.0
        ),
        id,
    )
}

/// A 500 for a failure the engine did not describe (a panic).
fn internal_error(cause: &str, id: &RequestId) -> Response {
    server_failure(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Internal,
        cause,
        id,
    )
}

/// The id [`request_id`] gave this request (empty outside that layer).
fn id_of(request: &Request) -> RequestId {
    request
        .extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(|| RequestId(String::new()))
}

async fn info(State(state): State<ServeState>, Extension(id): Extension<RequestId>) -> Response {
    match state.inner.retriever.info().await {
        Ok(info) => Json(info).into_response(),
        Err(err) => engine_error(err, &uri(&state), &id),
    }
}

async fn refresh(State(state): State<ServeState>, Extension(id): Extension<RequestId>) -> Response {
    match state.inner.retriever.refresh().await {
        Ok(refresh) => Json(refresh).into_response(),
        Err(err) => engine_error(err, &uri(&state), &id),
    }
}

/// One deadline over the whole request: reading the body, the search and
/// building the response. On expiry the handler is dropped, which aborts
/// its search on the pool.
async fn deadline(State(state): State<ServeState>, request: Request, next: Next) -> Response {
    let timeout = state.inner.options.request_timeout;
    let id = id_of(&request);
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(request_id = %id.0, "request timed out after {timeout:?}");
            error_response(
                StatusCode::GATEWAY_TIMEOUT,
                Refusal::Timeout,
                &format!(
                    "the request took longer than {} s (reading its body included); lower \"k\" \
                     or \"nprobes\", or add a \"filter\"",
                    timeout.as_secs_f64()
                ),
                &id,
            )
        }
    }
}

/// Any panic below this layer becomes a 500 with the request id; the
/// process and every other connection live on.
pub async fn catch_panic(request: Request, next: Next) -> Response {
    let id = id_of(&request);
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(payload) => internal_error(&format!("panic: {}", panic_message(payload)), &id),
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
    let id = id_of(request);
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

/// Serve on `listener` until `shutdown` resolves. Then no connection is
/// accepted, requests in flight finish within the request timeout (plus a
/// second), and connections still open after that are closed.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: ServeState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = state.router();
    let options = state.options().clone();
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: let some close.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                %peer,
                "closing a new connection: {} are open (--max-connections)",
                options.max_connections
            );
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let mut stopping = stopping.clone();
        let header_timeout = options.header_timeout;
        connections.spawn(async move {
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, "connection ended: {e}");
                    }
                }
                () = stop_requested(&mut stopping) => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let drain = options.request_timeout + Duration::from_secs(1);
    let drained = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "closing {} connections still open {drain:?} after shutdown began",
            connections.len()
        );
        connections.abort_all();
    }
    Ok(())
}

/// Resolves once shutdown has begun (or the sender is gone).
async fn stop_requested(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
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

    #[test]
    fn openapi_bounds_are_the_engines_limits() {
        use lanceflow::limits::*;
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let fields = &doc["components"]["schemas"]["SearchRequest"]["properties"];
        assert_eq!(fields["k"]["maximum"], MAX_K);
        assert_eq!(fields["nprobes"]["maximum"], MAX_NPROBES);
        assert_eq!(fields["query"]["maxLength"], MAX_QUERY_BYTES);
        assert_eq!(fields["vector"]["maxItems"], MAX_VECTOR_DIM);
        assert_eq!(fields["columns"]["maxItems"], MAX_COLUMNS);
        assert_eq!(fields["filter"]["maxLength"], MAX_FILTER_BYTES);
        let refine = fields["refine_factor"]["description"].as_str().unwrap();
        assert!(
            refine.contains(&MAX_REFINE_CANDIDATES.to_string()),
            "{refine}"
        );
        let filter = fields["filter"]["description"].as_str().unwrap();
        assert!(filter.contains(&MAX_FILTER_TERMS.to_string()), "{filter}");
        for function in [
            "lower",
            "upper",
            "length",
            "abs",
            "coalesce",
            "regexp_like",
            "array_has",
        ] {
            assert!(FILTER_FUNCTIONS.contains(&function), "{function}");
        }
    }
}

//! The HTTP side of the viewer: one page, its script, and a small read-only API over one cube.
//!
//! Safety by construction: the only files served are the two assets compiled into the binary
//! (so no path can reach the disk: anything else is 404), every route is GET, the listener is
//! on loopback unless the user says otherwise, and a request whose `Host` header is not this
//! server's address is refused (a web page elsewhere cannot reach it by DNS rebinding).
//!
//! | route | answer |
//! |---|---|
//! | `/` | the page |
//! | `/viewer.js`, `/colormaps.js`, `/ticks.js`, `/legend.js`, `/webm.js` | its script (ES modules): the page, the colormap tables, axis ticks, the colour bar, the WebM writer |
//! | `/favicon.ico` | 204 No Content (the page has no icon) |
//! | `/api/meta` | title, variables, axes with coordinates and labels (JSON); a cube that grew since (an append, `das --follow`) is opened again first, looked at once a second at most |
//! | `/api/face?var=&axis=&index=&max=[&r0=&r1=&c0=&c1=]` | a slice, or a window of its rows `r0..r1` and columns `c0..c1`, 16-bit quantised (`X-Face-*` headers give rows, cols, step and origin in level-0 cells, pyramid level, min, max) |
//! | `/api/value?var=&i=&j=&k=` | one stored value, exact (JSON) |
//! | `/api/overlays` | the outlines to draw over maps, in the cube's x/y (JSON) |
//! | `/api/profile?var=&axis=&i=&j=&k=` | the stored values along an axis (JSON) |

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tower_http::compression::CompressionLayer;

use axum::body::{Body, Bytes};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cube::{Face, ViewCube, MAX_FACE_SIDE};
use crate::ViewError;

const PAGE: &str = include_str!("../assets/index.html");
/// The page's ES modules, by the path the page loads them from.
const SCRIPTS: [(&str, &str); 5] = [
    ("/viewer.js", include_str!("../assets/viewer.js")),
    ("/colormaps.js", include_str!("../assets/colormaps.js")),
    ("/ticks.js", include_str!("../assets/ticks.js")),
    ("/legend.js", include_str!("../assets/legend.js")),
    ("/webm.js", include_str!("../assets/webm.js")),
];

/// Where to listen.
#[derive(Clone, Debug)]
pub struct ViewOptions {
    /// The address to listen on (`127.0.0.1` unless the cube is meant to be shared).
    pub host: String,
    /// 0: any free port.
    pub port: u16,
    /// Further names (or addresses) this server answers to in the `Host` header, e.g. the
    /// machine's name on the LAN when it listens on 0.0.0.0.
    pub allow_hosts: Vec<String>,
    /// Outlines drawn over the cube's maps (already in the cube's CRS).
    pub overlays: Vec<Overlay>,
}

/// Lines in the cube's projected x/y (a coastline, lake outlines) the page draws over the
/// y/x faces: read from vector files by the caller (`cryocube-geo` reprojects them).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Overlay {
    /// Its name in the page's list and key.
    pub name: String,
    /// Each line as x0, y0, x1, y1, ... (flat: half the JSON of pairs).
    pub paths: Vec<Vec<f64>>,
}

struct AppState {
    /// The cube shown; replaced when it grows (see [`meta`]).
    cube: RwLock<Arc<ViewCube>>,
    /// When the store was last looked at for growth.
    checked: Mutex<Instant>,
    /// `Host` header values this server answers to.
    hosts: Vec<String>,
    /// `/api/overlays`, made once.
    overlays: Bytes,
    /// Memory of the faces being made or sent, in KiB permits ([`ViewCube::work_bytes`] in
    /// all): a request takes what making its face needs ([`ViewCube::face_bytes`]), keeps the
    /// face's size of it until the face is sent. Requests beyond it wait, so their number
    /// does not multiply the server's memory.
    in_flight: Arc<Semaphore>,
}

type Shared = Arc<AppState>;

/// How often `/api/meta` looks at the store for growth, at most.
const GROWTH_CHECK: Duration = Duration::from_secs(1);

impl AppState {
    /// The cube as it is shown now.
    fn cube(&self) -> Arc<ViewCube> {
        self.cube.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Serves `cube` until the process ends; `ready` gets the bound address (to print the URL).
pub fn serve_blocking(
    cube: ViewCube,
    opts: &ViewOptions,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ViewError> {
    serve_until(cube, opts, ready, std::future::pending())
}

/// Serves `cube` until `stop` completes (then lets requests in flight finish).
pub fn serve_until(
    cube: ViewCube,
    opts: &ViewOptions,
    ready: impl FnOnce(SocketAddr),
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ViewError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ViewError::Server(e.to_string()))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port))
            .await
            .map_err(|e| ViewError::Server(format!("{}:{}: {e}", opts.host, opts.port)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ViewError::Server(e.to_string()))?;
        let app = router(cube, addr, opts);
        ready(addr);
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
            .map_err(|e| ViewError::Server(e.to_string()))
    })
}

/// A server running on its own thread (for a notebook, or any program that goes on).
pub struct Background {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ViewError>>>,
}

impl Background {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops it and waits until its port is closed.
    pub fn stop(&mut self) -> Result<(), ViewError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(ViewError::Server("the server thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Starts serving `cube` on a thread of its own; returns once it listens.
pub fn serve_in_background(cube: ViewCube, opts: &ViewOptions) -> Result<Background, ViewError> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let opts = opts.clone();
    let thread = std::thread::Builder::new()
        .name("cryocube-view".into())
        .spawn(move || {
            let ready = ready_tx.clone();
            let result = serve_until(cube, &opts, move |a| drop(ready.send(Ok(a))), async {
                let _ = stop_rx.await;
            });
            if let Err(e) = &result {
                let _ = ready_tx.send(Err(e.to_string()));
            }
            result
        })
        .map_err(|e| ViewError::Server(e.to_string()))?;
    match ready_rx.recv() {
        Ok(Ok(addr)) => Ok(Background {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }),
        Ok(Err(message)) => {
            let _ = thread.join();
            Err(ViewError::Server(message))
        }
        Err(_) => Err(ViewError::Server(
            "the server thread ended before listening".into(),
        )),
    }
}

/// The application: routes, the Host check and compression.
pub fn router(cube: ViewCube, addr: SocketAddr, opts: &ViewOptions) -> Router {
    let (host, allow_hosts) = (&opts.host, &opts.allow_hosts);
    let port = addr.port();
    let mut hosts = vec![
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("{host}:{port}"),
        addr.to_string(),
    ];
    for h in allow_hosts {
        hosts.push(h.clone());
        hosts.push(format!("{h}:{port}"));
    }
    hosts.sort();
    hosts.dedup();
    let work = cube.work_bytes();
    let state = Arc::new(AppState {
        cube: RwLock::new(Arc::new(cube)),
        checked: Mutex::new(Instant::now()),
        hosts,
        overlays: Bytes::from(json!({ "overlays": opts.overlays }).to_string()),
        in_flight: Arc::new(Semaphore::new(work >> 10)),
    });
    let mut routes = Router::new().route("/", get(page));
    for (path, text) in SCRIPTS {
        routes = routes.route(path, get(move || script(text)));
    }
    routes
        // Browsers ask for an icon; the page declares none: no content, not a 404 in the log.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/meta", get(meta))
        .route("/api/overlays", get(overlays))
        .route("/api/face", get(face))
        .route("/api/value", get(value))
        .route("/api/profile", get(profile))
        .fallback(not_found)
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn_with_state(state.clone(), check_host))
        .with_state(state)
}

async fn check_host(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let mut all = req.headers().get_all(header::HOST).iter();
    let host = all.next().and_then(|h| h.to_str().ok()).unwrap_or("");
    if all.next().is_some() {
        return (StatusCode::BAD_REQUEST, "more than one Host header").into_response();
    }
    if !state.hosts.iter().any(|h| h == host) {
        return (
            StatusCode::FORBIDDEN,
            format!("unexpected Host header {host:?}: this server answers only to its own address (cryocube view --allow-host NAME adds one)"),
        )
            .into_response();
    }
    next.run(req).await
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

async fn script(text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

fn error(e: ViewError) -> Response {
    let status = match e {
        ViewError::Request(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, e.to_string()).into_response()
}

/// Runs a cube read off the async workers (reads block on disk or S3).
async fn blocking<T: Send + 'static>(
    state: &Shared,
    f: impl FnOnce(&ViewCube) -> Result<T, ViewError> + Send + 'static,
) -> Result<T, Response> {
    let cube = state.cube();
    tokio::task::spawn_blocking(move || f(&cube))
        .await
        .map_err(|e| error(ViewError::Server(e.to_string())))?
        .map_err(error)
}

/// The cube's description. A cube that grew since (an append, `das --follow`) is opened
/// again first, at most once a second, so a page that follows the latest time sees it.
async fn meta(State(state): State<Shared>) -> Response {
    let due = {
        let mut checked = state.checked.lock().unwrap_or_else(|e| e.into_inner());
        let due = checked.elapsed() >= GROWTH_CHECK;
        if due {
            *checked = Instant::now();
        }
        due
    };
    if due {
        match blocking(&state, |c| c.grown()).await {
            Ok(Some(grown)) => {
                *state.cube.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(grown);
            }
            Ok(None) => {}
            // A store being rewritten can fail to open for a moment: keep showing the cube.
            Err(_) => log::debug!("looking for growth failed; the view stays"),
        }
    }
    Json(state.cube().meta()).into_response()
}

async fn overlays(State(state): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.overlays.clone(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct FaceQuery {
    var: String,
    axis: usize,
    index: u64,
    #[serde(default = "default_max")]
    max: u64,
    /// A window of the slice: rows r0..r1, columns c0..c1 (level-0 cells); all four or none.
    r0: Option<u64>,
    r1: Option<u64>,
    c0: Option<u64>,
    c1: Option<u64>,
}

fn default_max() -> u64 {
    1024
}

/// A face's 16-bit codes as the little-endian bytes the page reads.
struct FaceBytes {
    face: Arc<Face>,
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for FaceBytes {
    fn as_ref(&self) -> &[u8] {
        bytemuck::cast_slice(&self.face.quantised)
    }
}

// The codes go out as they are in memory: little-endian, as the page reads them.
#[cfg(not(target_endian = "little"))]
compile_error!("the viewer sends faces as little-endian u16 in memory order");

async fn face(State(state): State<Shared>, Query(q): Query<FaceQuery>) -> Response {
    let max = q.max.clamp(1, MAX_FACE_SIDE);
    let window = match (q.r0, q.r1, q.c0, q.c1) {
        (Some(r0), Some(r1), Some(c0), Some(c1)) => Some([r0..r1, c0..c1]),
        (None, None, None, None) => None,
        _ => {
            let e = ViewError::Request("a face window needs all of r0, r1, c0 and c1".into());
            return error(e);
        }
    };
    let budget = state.cube().work_bytes() >> 10;
    let permits = |bytes: usize| bytes.div_ceil(1024).clamp(1, budget);
    let need = match state
        .cube()
        .face_bytes(&q.var, q.axis, q.index, max, window.clone())
    {
        Ok(n) => n,
        Err(e) => return error(e),
    };
    let Ok(mut making) = state
        .in_flight
        .clone()
        .acquire_many_owned(permits(need) as u32)
        .await
    else {
        return error(ViewError::Server("shutting down".into()));
    };
    let face = match blocking(&state, move |c| {
        c.face(&q.var, q.axis, q.index, max, window)
    })
    .await
    {
        Ok(f) => f,
        Err(r) => return r,
    };
    // Keep what the face takes until it is sent, give back the rest at once: a finished face
    // never waits for memory it already holds.
    let sending = match making.split(permits(face.quantised.len() * 2)) {
        Some(part) => part,
        None => making,
    };
    // The body is the face itself (no copy), and holds its permits until it is sent.
    let body = Body::from(Bytes::from_owner(FaceBytes {
        face: face.clone(),
        _permit: sending,
    }));
    let mut headers = HeaderMap::new();
    let num = |v: f64| {
        HeaderValue::from_str(&if v.is_finite() {
            format!("{v:e}")
        } else {
            "NaN".into()
        })
        .expect("numbers are valid header values")
    };
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert("x-face-rows", face.rows.into());
    headers.insert("x-face-cols", face.cols.into());
    headers.insert("x-face-step-rows", face.step[0].into());
    headers.insert("x-face-step-cols", face.step[1].into());
    headers.insert("x-face-origin-rows", face.origin[0].into());
    headers.insert("x-face-origin-cols", face.origin[1].into());
    headers.insert("x-face-level", face.level.into());
    headers.insert("x-face-min", num(face.min));
    headers.insert("x-face-max", num(face.max));
    (headers, body).into_response()
}

#[derive(Deserialize)]
struct PointQuery {
    var: String,
    #[serde(default)]
    axis: usize,
    i: u64,
    j: u64,
    k: u64,
}

/// NaN is not JSON: it travels as `null`.
fn finite_or_null(v: f64) -> serde_json::Value {
    if v.is_finite() {
        json!(v)
    } else {
        serde_json::Value::Null
    }
}

async fn value(State(state): State<Shared>, Query(q): Query<PointQuery>) -> Response {
    let idx = [q.i, q.j, q.k];
    let reply = blocking(&state, move |c| {
        let v = c.value(&q.var, idx)?;
        Ok((v, c.value_text(&q.var, v)))
    });
    match reply.await {
        Ok((v, text)) => {
            Json(json!({"index": idx, "value": finite_or_null(v), "text": text})).into_response()
        }
        Err(r) => r,
    }
}

async fn profile(State(state): State<Shared>, Query(q): Query<PointQuery>) -> Response {
    let idx = [q.i, q.j, q.k];
    match blocking(&state, move |c| c.profile(&q.var, q.axis, idx)).await {
        Ok(vals) => Json(json!({
            "axis": q.axis,
            "index": idx,
            "values": vals.into_iter().map(finite_or_null).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(r) => r,
    }
}

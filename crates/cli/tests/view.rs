//! `cryocube view`: the server (read-only, loopback, no traversal, no foreign Host, exact
//! values) and the page in a real headless Chromium driven over WebDriver (a known cube loads,
//! pixel colours equal the colormap of the known values, NaN has its colour, a slider changes
//! the face, hover shows the stored value, a link reopens the view).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cryocube_cube::cf::time_attrs;
use cryocube_cube::{ArraySpec, Attrs, CubeWriter, DType, WriteOptions, ZarrFormat};
use serde_json::{json, Value};

/// Shape of the known cube: every dimension below 129, none equal.
const NT: usize = 20;
const ND: usize = 30;
const NF: usize = 40;
/// Frequencies from this index on are NaN.
const NAN_FROM: usize = 32;
const T0_US: i64 = 1_595_376_000_000_000;

/// The known value at (t, d, f): the time index scaled to 0..1, NaN in the high band.
fn known(t: usize, _d: usize, f: usize) -> f32 {
    if f >= NAN_FROM {
        f32::NAN
    } else {
        t as f32 / (NT - 1) as f32
    }
}

fn new_cube(root: &Path) -> CubeWriter {
    CubeWriter::create(
        root,
        WriteOptions {
            format: ZarrFormat::V2,
            overwrite: false,
        },
    )
    .unwrap()
}

fn write_cube(root: &Path) {
    let mut w = new_cube(root);
    let coord = |name: &str, n: usize, dtype: DType, attrs: Attrs| ArraySpec {
        name: name.into(),
        dims: vec![name.into()],
        shape: vec![n as u64],
        chunks: vec![n as u64],
        shard: None,
        dtype,
        attrs,
    };
    let mut m = Attrs::new();
    m.insert("units".into(), json!("m"));
    w.add_array(coord("time", NT, DType::I64, time_attrs("start")))
        .unwrap();
    w.add_array(coord("distance", ND, DType::F64, m)).unwrap();
    let mut hz = Attrs::new();
    hz.insert("units".into(), json!("Hz"));
    w.add_array(coord("frequency", NF, DType::F64, hz)).unwrap();
    let mut attrs = Attrs::new();
    attrs.insert("units".into(), json!("dB"));
    attrs.insert("long_name".into(), json!("known test values"));
    w.add_array(ArraySpec {
        name: "power".into(),
        dims: vec!["time".into(), "distance".into(), "frequency".into()],
        shape: vec![NT as u64, ND as u64, NF as u64],
        chunks: vec![8, 16, NF as u64],
        shard: None,
        dtype: DType::F32,
        attrs,
    })
    .unwrap();
    let times: Vec<i64> = (0..NT as i64).map(|i| T0_US + i * 100_000).collect();
    w.write_all("time", &times).unwrap();
    w.write_all(
        "distance",
        &(0..ND).map(|i| i as f64 * 4.0).collect::<Vec<_>>(),
    )
    .unwrap();
    w.write_all(
        "frequency",
        &(0..NF).map(|i| i as f64 * 0.5).collect::<Vec<_>>(),
    )
    .unwrap();
    for ct in 0..NT.div_ceil(8) {
        for cd in 0..ND.div_ceil(16) {
            let mut chunk = Vec::with_capacity(8 * 16 * NF);
            for t in ct * 8..ct * 8 + 8 {
                for d in cd * 16..cd * 16 + 16 {
                    for f in 0..NF {
                        chunk.push(if t < NT && d < ND {
                            known(t, d, f)
                        } else {
                            f32::NAN
                        });
                    }
                }
            }
            w.write_chunk("power", &[ct as u64, cd as u64, 0], &chunk)
                .unwrap();
        }
    }
    let mut root_attrs = Attrs::new();
    root_attrs.insert("title".into(), json!("Known test cube"));
    w.finish(root_attrs).unwrap();
}

/// `cryocube view` on a free port; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(cube: &Path) -> Server {
        Server::start_with(cube, &[])
    }

    fn start_with(cube: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cryocube"))
            .args(["view", cube.to_str().unwrap(), "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .trim_end_matches('/')
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Server { child, url }
    }

    fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// One raw HTTP/1.1 request (no client normalises the path): status and body.
    fn raw(&self, method: &str, path: &str, host: &str) -> (u16, Vec<u8>) {
        let (status, _, body) = self.raw_with_head(method, path, host);
        (status, body)
    }

    /// [`Server::raw`] with the response head.
    fn raw_with_head(&self, method: &str, path: &str, host: &str) -> (u16, String, Vec<u8>) {
        let mut s = TcpStream::connect(self.addr()).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&out[..head_end]).to_string();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut body = out[head_end + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        (status, head.to_ascii_lowercase(), body)
    }

    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        self.raw("GET", path, self.addr())
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 4 + n..];
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn server_is_read_only_loopback_and_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let cube = tmp.path().join("known.zarr");
    write_cube(&cube);
    let s = Server::start(&cube);

    for path in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/viewer.js/../../../Cargo.toml",
        "/known.zarr/.zmetadata",
        "/power/.zarray",
        "//etc/passwd",
    ] {
        let (status, body) = s.get(path);
        assert_eq!(status, 404, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let (status, body) = s.raw("GET", "/api/meta", "evil.example:80");
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("unexpected Host header"));
    let (status, _) = s.raw("POST", "/api/meta", s.addr());
    assert_eq!(status, 405);
    let (status, _) = s.raw(
        "GET",
        "/",
        &format!("localhost:{}", s.url.rsplit(':').next().unwrap()),
    );
    assert_eq!(status, 200);

    let meta = s.json("/api/meta");
    assert_eq!(meta["title"], "Known test cube");
    assert_eq!(meta["variables"][0]["name"], "power");
    assert_eq!(meta["variables"][0]["shape"], json!([NT, ND, NF]));
    let time = &meta["axes"][0];
    assert_eq!(time["labels"][0], "2020-07-22T00:00:00Z");
    assert_eq!(time["labels"][3], "2020-07-22T00:00:00.300Z");
    assert_eq!(meta["axes"][2]["units"], "Hz");

    // Exact values and profiles, NaN as null.
    let v = s.json("/api/value?var=power&i=7&j=3&k=5");
    assert_eq!(v["value"].as_f64().unwrap() as f32, known(7, 3, 5));
    let v = s.json(&format!("/api/value?var=power&i=7&j=3&k={NAN_FROM}"));
    assert!(v["value"].is_null());
    let p = s.json("/api/profile?var=power&axis=0&i=0&j=3&k=5");
    let vals: Vec<f32> = p["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(vals, (0..NT).map(|t| known(t, 3, 5)).collect::<Vec<_>>());

    // A face: quantised values decode to the stored ones within the quantisation step.
    let (status, body) = s.get("/api/face?var=power&axis=1&index=4&max=1024");
    assert_eq!(status, 200);
    assert_eq!(body.len(), NT * NF * 2);
    let q: Vec<u16> = body
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    for t in 0..NT {
        for f in 0..NF {
            let code = q[t * NF + f];
            if f >= NAN_FROM {
                assert_eq!(code, u16::MAX);
            } else {
                let v = code as f32 / 65534.0;
                assert!((v - known(t, 4, f)).abs() < 1e-4, "({t}, {f}): {v}");
            }
        }
    }
    // Thinned to the screen: no side above max.
    let (status, body) = s.get("/api/face?var=power&axis=0&index=0&max=10");
    assert_eq!(status, 200);
    assert!(body.len() <= 10 * 10 * 2, "{}", body.len());
    // Bad requests are 400 with a reason, not a crash.
    let (status, body) = s.get("/api/value?var=power&i=99&j=0&k=0");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("outside the shape"));
    let (status, _) = s.get("/api/face?var=nope&axis=0&index=0");
    assert_eq!(status, 400);
}

// ---------- WebDriver ----------

struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Debian's chromedriver + chromium, headless with software WebGL; missing ones fail.
    fn start() -> Browser {
        let driver_bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .expect(
                "chromedriver not found: apt-get install chromium chromium-driver (make test does)",
            );
        let port = common::free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                    "--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
                    "--disable-component-update", "--no-first-run", "--disable-sync",
                    "--window-size=1000,700", "--force-device-scale-factor=1",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let r: Value = serde_json::from_str(
            &ureq::post(&format!("{base}/session"))
                .set("Content-Type", "application/json")
                .send_string(&caps.to_string())
                .unwrap_or_else(|e| panic!("WebDriver session: {e}"))
                .into_string()
                .unwrap(),
        )
        .unwrap();
        let session = r["value"]["sessionId"].as_str().unwrap().to_string();
        Browser {
            driver,
            base,
            session,
            _profile: profile,
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let r = match method {
            "GET" => ureq::get(&url).call(),
            _ => ureq::post(&url)
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
        };
        match r {
            Ok(r) => {
                serde_json::from_str::<Value>(&r.into_string().unwrap()).unwrap()["value"].clone()
            }
            Err(ureq::Error::Status(code, r)) => {
                panic!("{path}: {code} {}", r.into_string().unwrap_or_default())
            }
            Err(e) => panic!("{path}: {e}"),
        }
    }

    fn go(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url }));
    }

    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    /// Waits until the page has drawn `n` complete frames; fails with its status line.
    fn wait_frames(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let f = self.js("return +(document.body.dataset.frames || 0)");
            if f.as_u64().unwrap_or(0) >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no frame {n}: {}",
                self.js("return document.getElementById('status').textContent")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn screenshot(&self) -> Image {
        let b64 = self.cmd("GET", "/screenshot", Value::Null);
        decode_png(b64.as_str().unwrap())
    }

    /// The page's "save PNG" image (the canvas, not the page around it).
    fn exported_png(&self) -> Image {
        let url = self.js("return window.cryocubeDebug.png()");
        decode_png(
            url.as_str()
                .unwrap()
                .strip_prefix("data:image/png;base64,")
                .unwrap(),
        )
    }

    /// A click (press and release without moving) at (x, y).
    fn click(&self, x: f64, y: f64) {
        self.cmd(
            "POST",
            "/actions",
            json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
                "actions": [
                    {"type": "pointerMove", "duration": 0, "x": x.round() as i64, "y": y.round() as i64, "origin": "viewport"},
                    {"type": "pointerDown", "button": 0},
                    {"type": "pointerUp", "button": 0}
                ]}]}),
        );
    }

    /// Runs `script` (a change the page draws) and waits for the frame it causes.
    fn act(&self, script: &str) {
        let frames = self.js("return window.cryocube.frames").as_u64().unwrap();
        self.js(script);
        self.wait_frames(frames + 1);
    }

    /// Moves the mouse to (x, y) and waits for the hover readout of the cell there.
    fn hover_at(&self, x: f64, y: f64) -> Value {
        self.move_to(x, y);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let h = self.js("return window.cryocubeHover || null");
            if !h.is_null() {
                return h;
            }
            assert!(Instant::now() < deadline, "no hover readout");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn move_to(&self, x: f64, y: f64) {
        self.cmd(
            "POST",
            "/actions",
            json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
                "actions": [{"type": "pointerMove", "duration": 0, "x": x.round() as i64, "y": y.round() as i64, "origin": "viewport"}]}]}),
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// RGB pixels, width, height and the PNG bytes.
type Image = (Vec<u8>, u32, u32, Vec<u8>);

fn decode_png(base64_png: &str) -> Image {
    use base64::Engine;
    let png_bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_png)
        .unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes.clone()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let rgb: Vec<u8> = buf[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    (rgb, info.width, info.height, png_bytes)
}

fn pixel(img: &Image, x: f64, y: f64) -> [u8; 3] {
    let (rgb, w, _, _) = img;
    let i = (y.round() as usize * *w as usize + x.round() as usize) * 3;
    [rgb[i], rgb[i + 1], rgb[i + 2]]
}

fn close(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (*x as i32 - y as i32).abs() <= tol)
}

/// The screen position (CSS px) of the point (tb, tc) of the face `axis`/`side` of the box.
fn face_point(b: &Browser, axis: usize, side: usize, tb: f64, tc: f64) -> Option<(f64, f64)> {
    let v = b.js(&format!(
        "return window.cryocubeDebug.facePointOnScreen({axis}, {side}, {tb}, {tc})"
    ));
    v.as_array()
        .map(|a| (a[0].as_f64().unwrap(), a[1].as_f64().unwrap()))
}

/// Where the canvas's top left corner is on the page (CSS px): an exported PNG starts there.
fn canvas_origin(b: &Browser) -> (f64, f64) {
    b.js("const r = document.getElementById('gl').getBoundingClientRect(); return [r.left, r.top]")
        .as_array()
        .map(|a| (a[0].as_f64().unwrap(), a[1].as_f64().unwrap()))
        .unwrap()
}

/// The page's URL opening the view `state` (the JSON the page keeps in its `#`).
fn view_url(base: &str, state: &Value) -> String {
    let encoded: String = state
        .to_string()
        .bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (c as char).to_string(),
            _ => format!("%{c:02X}"),
        })
        .collect();
    format!("{base}/#{encoded}")
}

#[test]
fn page_draws_the_known_cube_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let cube = tmp.path().join("known.zarr");
    write_cube(&cube);
    let s = Server::start(&cube);
    let b = Browser::start();

    // Gray colormap and a fixed range 0..1: a value v must be drawn as gray 255 v.
    let view = json!({
        "var": "power", "lo": [0, 0, 0], "hi": [NT, ND, NF], "yaw": -0.6, "pitch": 0.45,
        "zoom": 1.0, "proj": "ortho", "cmap": "gray", "reverse": false, "auto": false,
        "vmin": 0.0, "vmax": 1.0, "log": false, "paxis": 2
    });
    b.go(&view_url(&s.url, &view));
    b.wait_frames(1);
    assert_eq!(b.js("return window.cryocube.faces").as_u64(), Some(3));

    // With yaw -0.6 and pitch 0.45 (camera above, to the side) the visible faces are the
    // time face at index 0 (value 0: black), the top distance face and a frequency face.
    let img = b.screenshot();
    std::fs::create_dir_all(Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap();
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("view-screenshot.png"),
        &img.3,
    )
    .unwrap();
    let visible: Vec<(usize, usize)> =
        serde_json::from_value(b.js("return window.cryocubeDebug.visible()")).unwrap();
    // The distance face (axis 1) shows time along one side: its cells at time t are gray t/(NT-1).
    let (axis, side) = *visible
        .iter()
        .find(|(a, _)| *a == 1)
        .expect("a distance face");
    for t in [0usize, 9, 19] {
        // tb runs along time (the first remaining dim), tc along frequency, inside the non-NaN band.
        let tb = (t as f64 + 0.5) / NT as f64;
        let tc = 10.5 / NF as f64;
        let (x, y) = face_point(&b, axis, side, tb, tc).unwrap();
        let want = (255.0 * known(t, 0, 10)).round() as u8;
        let got = pixel(&img, x, y);
        assert!(
            close(got, [want; 3], 2),
            "time {t} at ({x}, {y}): {got:?}, want gray {want}"
        );
    }
    // PNG export: the canvas as the user sees it (same colours at the same place).
    let png = b.exported_png();
    let (cx, cy) = canvas_origin(&b);
    let (x, y) = face_point(&b, axis, side, (19.5) / NT as f64, 10.5 / NF as f64).unwrap();
    let got = pixel(&png, x - cx, y - cy);
    assert!(close(got, [255; 3], 2), "PNG export at ({x}, {y}): {got:?}");

    // NaN is magenta.
    let tc = (NAN_FROM as f64 + 3.5) / NF as f64;
    let (x, y) = face_point(&b, axis, side, 0.5, tc).unwrap();
    assert_eq!(pixel(&img, x, y), [255, 0, 255], "NaN colour at ({x}, {y})");
    // ... or, chosen for sparse layers, the background.
    let nan_colour = |colour: &str| {
        b.act(&format!(
            "const e = document.getElementById('nan'); e.value = '{colour}'; e.dispatchEvent(new Event('change'));"
        ));
    };
    nan_colour("background");
    let shot = b.screenshot();
    assert!(
        close(pixel(&shot, x, y), [22, 24, 28], 1),
        "NaN as background: {:?}",
        pixel(&shot, x, y)
    );
    nan_colour("magenta");

    // Hover shows the stored value of the cell under the mouse.
    let (x, y) = face_point(&b, axis, side, 12.5 / NT as f64, 5.5 / NF as f64).unwrap();
    let hover = b.hover_at(x, y);
    let idx: Vec<usize> = serde_json::from_value(hover["index"].clone()).unwrap();
    assert_eq!(idx[0], 12, "{hover}");
    assert_eq!(idx[2], 5, "{hover}");
    assert_eq!(
        hover["value"].as_f64().unwrap() as f32,
        known(idx[0], idx[1], idx[2])
    );
    let text = b.js("return document.getElementById('hover').textContent");
    assert!(
        text.as_str()
            .unwrap()
            .contains(&format!("power = {}", hover["text"].as_str().unwrap())),
        "{text}"
    );

    // A click draws the profile through that cell along the chosen axis (frequency: a
    // spectrum), with the stored values (NaN as null).
    b.click(x, y);
    let deadline = Instant::now() + Duration::from_secs(10);
    let profile = loop {
        let p = b.js("return window.cryocubeProfile || null");
        if !p.is_null() {
            break p;
        }
        assert!(Instant::now() < deadline, "no profile");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(profile["axis"], 2);
    let at: Vec<usize> = serde_json::from_value(profile["index"].clone()).unwrap();
    assert_eq!(at, idx);
    let values = profile["values"].as_array().unwrap();
    assert_eq!(values.len(), NF);
    for (f, v) in values.iter().enumerate() {
        let want = known(at[0], at[1], f);
        if want.is_nan() {
            assert!(v.is_null(), "frequency {f}: {v}");
        } else {
            assert_eq!(v.as_f64().unwrap() as f32, want, "frequency {f}");
        }
    }
    assert!(b
        .js("return document.getElementById('pinfo').textContent")
        .as_str()
        .unwrap()
        .contains("power along frequency"));
    // The panel is on screen (this window is smaller than 1280 x 720), and its CSV holds the
    // coordinate with its unit and the stored values of the selected range (NaN empty).
    let r = b.js("const e = document.getElementById('profilebox'); const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom, e.hidden, innerWidth, innerHeight]");
    assert_eq!(r[4], false, "{r}");
    let f = |i: usize| r[i].as_f64().unwrap();
    assert!(
        f(0) >= 0.0 && f(1) >= 0.0 && f(2) <= f(5) && f(3) <= f(6),
        "{r}"
    );
    let csv = b.js("return window.cryocubeDebug.profileCsv()");
    let lines: Vec<&str> = csv.as_str().unwrap().lines().collect();
    assert_eq!(lines[0], "frequency [Hz],power [dB]");
    assert_eq!(lines.len(), NF + 1);
    for (f, line) in lines[1..].iter().enumerate() {
        let want = known(at[0], at[1], f);
        let cell = if want.is_nan() {
            String::new()
        } else {
            format!("{}", f64::from(want))
        };
        assert_eq!(*line, format!("{},{cell}", f as f64 * 0.5), "frequency {f}");
    }

    // Moving the time slider of the visible time face so that it shows index 10 redraws it
    // with value 10/19 (it showed the first or the last time step before).
    let (_, tside) = *visible.iter().find(|(a, _)| *a == 0).expect("a time face");
    let before = if tside == 0 { 0 } else { NT - 1 };
    let (x, y) = face_point(&b, 0, tside, 0.5, 10.5 / NF as f64).unwrap();
    let want = (255.0 * known(before, 0, 0)).round() as u8;
    assert!(
        close(pixel(&img, x, y), [want; 3], 2),
        "{:?} want {want}",
        pixel(&img, x, y)
    );
    let (slider, value) = if tside == 0 { ("lo0", 10) } else { ("hi0", 11) };
    b.js(&format!(
        "const e = document.getElementById('{slider}'); e.value = {value}; e.dispatchEvent(new Event('input'));"
    ));
    b.wait_frames(2);
    let img2 = b.screenshot();
    let (x, y) = face_point(&b, 0, tside, 0.5, 10.5 / NF as f64).unwrap();
    let want = (255.0 * known(10, 0, 0)).round() as u8;
    assert!(
        close(pixel(&img2, x, y), [want; 3], 2),
        "{:?} want {want}",
        pixel(&img2, x, y)
    );

    // The URL keeps the view (written once the view settles): reopening it shows the same
    // sub-cube.
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.js(
        "try { return JSON.parse(decodeURIComponent(location.hash.slice(1))).lo[0] === window.cryocube.state.lo[0] \
           && JSON.parse(decodeURIComponent(location.hash.slice(1))).hi[0] === window.cryocube.state.hi[0]; } catch (e) { return false; }",
    ) != Value::Bool(true)
    {
        assert!(Instant::now() < deadline, "the URL never got the view");
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = b.js("return location.href");
    b.go("about:blank");
    b.go(url.as_str().unwrap());
    b.wait_frames(1);
    let state = b.js("return window.cryocube.state");
    let time_range = (state["lo"][0].as_u64(), state["hi"][0].as_u64());
    assert!(
        time_range == (Some(10), Some(NT as u64)) || time_range == (Some(0), Some(11)),
        "{state}"
    );
    assert_eq!(state["cmap"], "gray");
}

/// Map size of the known 2-D cube: y longer than the pyramid's 256 cells, x shorter.
const MY: usize = 300;
const MX: usize = 200;
/// Rows from this one on are NaN.
const MAP_NAN_FROM: usize = 250;

/// The known map value at (y, x): a ramp along both axes, NaN in the last rows.
fn known_map(y: usize, x: usize) -> f32 {
    if y >= MAP_NAN_FROM {
        f32::NAN
    } else {
        0.5 * x as f32 / (MX - 1) as f32 + 0.5 * y as f32 / (MY - 1) as f32
    }
}

/// Chunk side of the known map: larger than the pyramid's, so that one unit of its work spans
/// several output chunks, clipped at the map's edges.
const MAP_CHUNK: usize = 256;

/// A polar-cube-like store: one 2-D (y, x) variable with descending y, 256-cell chunks.
fn write_map_cube(root: &Path) {
    let mut w = new_cube(root);
    let mut m = Attrs::new();
    m.insert("units".into(), json!("m"));
    for (name, n) in [("y", MY), ("x", MX)] {
        w.add_array(ArraySpec {
            name: name.into(),
            dims: vec![name.into()],
            shape: vec![n as u64],
            chunks: vec![n as u64],
            shard: None,
            dtype: DType::F64,
            attrs: m.clone(),
        })
        .unwrap();
    }
    let mut attrs = Attrs::new();
    attrs.insert("units".into(), json!("m"));
    attrs.insert("long_name".into(), json!("known map"));
    w.add_array(ArraySpec {
        name: "height".into(),
        dims: vec!["y".into(), "x".into()],
        shape: vec![MY as u64, MX as u64],
        chunks: vec![MAP_CHUNK as u64; 2],
        shard: None,
        dtype: DType::F32,
        attrs,
    })
    .unwrap();
    // A volume the cube says is nearly empty: listed after the map.
    let mut sparse = Attrs::new();
    sparse.insert("valid_fraction".into(), json!(0.001));
    w.add_array(ArraySpec {
        name: "lake".into(),
        dims: vec!["t".into(), "a".into(), "b".into()],
        shape: vec![2, 3, 4],
        chunks: vec![2, 3, 4],
        shard: None,
        dtype: DType::F32,
        attrs: sparse,
    })
    .unwrap();
    let mut lake = vec![f32::NAN; 24];
    lake[5] = 1.0;
    w.write_all("lake", &lake).unwrap();
    let y: Vec<f64> = (0..MY).map(|i| 500_000.0 - 1000.0 * i as f64).collect();
    let x: Vec<f64> = (0..MX).map(|i| -2_000_000.0 + 1000.0 * i as f64).collect();
    w.write_all("y", &y).unwrap();
    w.write_all("x", &x).unwrap();
    let n = MAP_CHUNK;
    for a in 0..MY.div_ceil(n) {
        for b in 0..MX.div_ceil(n) {
            let chunk: Vec<f32> = (a * n..a * n + n)
                .flat_map(|r| {
                    (b * n..b * n + n).map(move |c| {
                        if r < MY && c < MX {
                            known_map(r, c)
                        } else {
                            f32::NAN
                        }
                    })
                })
                .collect();
            w.write_chunk("height", &[a as u64, b as u64], &chunk)
                .unwrap();
        }
    }
    w.finish(Attrs::new()).unwrap();
}

/// A 2-D variable (a polar cube's map) is shown as a flat box facing the camera: the pixel
/// colours are the known values (north row on top), NaN has its colour, hover gives the
/// stored value with its y and x, and its pyramid levels are block means of the map.
#[test]
fn a_2d_map_is_shown_flat_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let cube = tmp.path().join("map.zarr");
    write_map_cube(&cube);
    let o = common::cryocube(&["pyramid", cube.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::text(&o));
    // Level 1 halves y (300 > 256) and keeps x: the means of 2 x 1 blocks.
    let level0: Vec<f64> = (0..MY)
        .flat_map(|r| (0..MX).map(move |c| known_map(r, c) as f64))
        .collect();
    let (want, ws) = halve(&level0, [1, MY, MX]);
    assert_eq!(ws, [1, 150, 200]);
    let r = cryocube_cube::CubeReader::open(cube.join(".pyramid/1")).unwrap();
    assert_eq!(r.array("height").unwrap().shape, [150, 200]);
    let got = r.read_all_f64("height").unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-6,
            "level 1 cell {i}: {g} vs {w}"
        );
    }

    let s = Server::start(&cube);
    let meta = s.json("/api/meta");
    // The page opens on the first: the map with data, not the nearly empty volume.
    let v = &meta["variables"][0];
    assert_eq!(v["name"], "height");
    assert_eq!(meta["variables"][1]["name"], "lake");
    assert_eq!(meta["variables"][1]["flat"], false);
    assert_eq!(v["flat"], true);
    assert_eq!(v["dims"], json!(["", "y", "x"]));
    assert_eq!(v["shape"], json!([1, MY, MX]));
    assert_eq!(meta["levels"], 2);
    // Exact values through the added dimension, a profile along x.
    let one = s.json("/api/value?var=height&i=0&j=7&k=11");
    assert_eq!(one["value"].as_f64().unwrap() as f32, known_map(7, 11));
    let p = s.json("/api/profile?var=height&axis=2&i=0&j=7&k=0");
    let row: Vec<f32> = p["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(row, (0..MX).map(|c| known_map(7, c)).collect::<Vec<_>>());
    // The map face asked for at 150 cells comes from level 1.
    let (_, head, _) = s.raw_with_head(
        "GET",
        "/api/face?var=height&axis=0&index=0&max=150",
        s.addr(),
    );
    assert!(head.contains("x-face-level: 1"), "{head}");

    let b = Browser::start();
    let view = json!({
        "proj": "ortho", "cmap": "gray", "auto": false, "vmin": 0.0, "vmax": 1.0,
    });
    b.go(&view_url(&s.url, &view));
    b.wait_frames(1);
    // Facing the camera: one face, the map.
    assert_eq!(b.js("return window.cryocube.faces").as_u64(), Some(1));
    let visible: Vec<(usize, usize)> =
        serde_json::from_value(b.js("return window.cryocubeDebug.visible()")).unwrap();
    assert_eq!(visible, [(0, 1)]);
    let img = b.screenshot();
    for (r, c) in [(0usize, 0usize), (10, 190), (120, 60), (240, 199)] {
        let (x, y) = face_point(
            &b,
            0,
            1,
            (r as f64 + 0.5) / MY as f64,
            (c as f64 + 0.5) / MX as f64,
        )
        .unwrap();
        let want = (255.0 * known_map(r, c)).round() as u8;
        let got = pixel(&img, x, y);
        // The face may come from level 1 (two rows averaged): allow one row's step.
        assert!(
            close(got, [want; 3], 3),
            "row {r} col {c} at ({x}, {y}): {got:?}, want gray {want}"
        );
    }
    // The first row is on top of the screen, the NaN rows at the bottom in magenta.
    let (_, top) = face_point(&b, 0, 1, 0.0, 0.5).unwrap();
    let (_, bottom) = face_point(&b, 0, 1, 1.0, 0.5).unwrap();
    assert!(top < bottom, "{top} {bottom}");
    let (x, y) = face_point(&b, 0, 1, 290.5 / MY as f64, 0.5).unwrap();
    assert_eq!(pixel(&img, x, y), [255, 0, 255], "NaN colour at ({x}, {y})");
    // Hover: the stored value and its y and x (no line for the added dimension).
    let (x, y) = face_point(&b, 0, 1, 33.5 / MY as f64, 44.5 / MX as f64).unwrap();
    let hover = b.hover_at(x, y);
    // (A cell is about 2 pixels here and the pointer lands on whole pixels: the cell picked is
    // the one under the pointer, within a cell of the one aimed at.)
    let idx: Vec<usize> = serde_json::from_value(hover["index"].clone()).unwrap();
    assert!(
        idx[0] == 0 && idx[1].abs_diff(33) <= 1 && idx[2].abs_diff(44) <= 1,
        "{hover}"
    );
    let (r, c) = (idx[1], idx[2]);
    assert_eq!(hover["value"].as_f64().unwrap() as f32, known_map(r, c));
    let text = b.js("return document.getElementById('hover').textContent");
    let text = text.as_str().unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    let (ym, xm) = (500_000 - 1000 * r as i64, -2_000_000 + 1000 * c as i64);
    assert!(text.contains(&format!("y = {ym} m  [{r}]")), "{text}");
    assert!(text.contains(&format!("x = {xm} m  [{c}]")), "{text}");
    // No slider for the added dimension.
    assert_eq!(
        b.js("return document.querySelectorAll('#dims .dim').length"),
        2
    );

    // Narrowed ranges zoom in: rows 100..140 and columns 50..90 fill the box and are drawn
    // cell for cell from the stored map (level 0), not from the level-1 face of the whole map.
    let view = json!({
        "lo": [0, 100, 50], "hi": [1, 140, 90],
        "proj": "ortho", "cmap": "gray", "auto": false, "vmin": 0.0, "vmax": 1.0,
    });
    // (Another page first: a new `#` alone would not reload this one.)
    b.go("about:blank");
    b.go(&view_url(&s.url, &view));
    b.wait_frames(1);
    assert_eq!(b.js("return window.cryocube.levels"), json!([0]));
    let (x0, y0) = face_point(&b, 0, 1, 0.0, 0.0).unwrap();
    let (x1, y1) = face_point(&b, 0, 1, 1.0, 1.0).unwrap();
    assert!(
        x1 - x0 > 300.0 && y1 - y0 > 300.0,
        "({x0}, {y0}) .. ({x1}, {y1})"
    );
    let img = b.screenshot();
    for (r, c) in [(100usize, 50usize), (117, 61), (139, 89), (125, 70)] {
        let (x, y) = face_point(
            &b,
            0,
            1,
            (r - 100) as f64 / 40.0 + 0.5 / 40.0,
            (c - 50) as f64 / 40.0 + 0.5 / 40.0,
        )
        .unwrap();
        let want = (255.0 * known_map(r, c)).round() as u8;
        let got = pixel(&img, x, y);
        assert!(
            close(got, [want; 3], 1),
            "row {r} col {c}: {got:?}, want gray {want}"
        );
    }
}

/// The demo's cube (a real `cryocube das` output) in the page with the default view: all
/// three faces drawn with the automatic range; the screenshot is the README's
/// (`target/tmp/view-demo.png`, copied to `docs/view-demo.png`).
#[test]
fn demo_cube_opens_with_the_default_view() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let o = common::cryocube(&["demo", "-o", out.to_str().unwrap(), "-q"]);
    // The demo builds the pyramid (`das --pyramid` does the same): levels below the cube.
    assert!(out.join("demo.zarr/.pyramid/pyramid.json").is_file());
    assert!(o.status.success(), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("cryocube view"),
        "the demo ends with the view command: {}",
        common::text(&o)
    );
    // `das --pyramid` builds the same levels right after the cube.
    let again = tmp.path().join("again.zarr");
    let o = common::cryocube(&[
        "das",
        out.join("raw").to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
        "--pyramid",
        "-q",
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    assert!(again.join(".pyramid/pyramid.json").is_file());
    // `view --help` names the cube the demo writes.
    let help = common::text(&common::cryocube(&["view", "--help"]));
    assert!(help.contains("cryocube-demo/demo.zarr"), "{help}");
    let s = Server::start(&out.join("demo.zarr"));
    let b = Browser::start();
    b.go(&format!("{}/", s.url));
    b.wait_frames(1);
    assert_eq!(b.js("return window.cryocube.faces").as_u64(), Some(3));
    let state = b.js("return window.cryocube.state");
    assert!(state["vmax"].as_f64().unwrap() > state["vmin"].as_f64().unwrap());
    assert_eq!(
        s.json("/api/meta")["levels"],
        4,
        "the cube and its 3 pyramid levels"
    );
    let img = b.screenshot();
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("view-demo.png"),
        &img.3,
    )
    .unwrap();
    // The faces are coloured by the data: many distinct viridis colours on the stage.
    let mut colours = std::collections::HashSet::new();
    for y in (40..(img.2 as usize - 40)).step_by(7) {
        for x in (50..650).step_by(7) {
            colours.insert(pixel(&img, x as f64, y as f64));
        }
    }
    assert!(colours.len() > 100, "{} colours", colours.len());
    assert!(
        !colours.contains(&[255, 0, 255]),
        "the demo cube has no NaN, yet the NaN colour shows"
    );
    // Quick slider steps through more faces than the page keeps (48), then a PNG export:
    // no texture is used after it was deleted (WebGL's INVALID_OPERATION, issue #17).
    assert_eq!(b.js("return window.cryocubeDebug.glError()"), 0);
    // (The visible time face is the range's end: each step is a new face, while the other
    // two faces, still over half the time axis, are the ones drawn first.)
    b.js("const e = document.getElementById('hi0'); for (let i = 1; i <= 80; i++) { e.value = 1191 - 5 * i; e.dispatchEvent(new Event('input')); }");
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.js("return window.cryocube.state.hi[0]") != 791 {
        assert!(Instant::now() < deadline, "the last step was never drawn");
        std::thread::sleep(Duration::from_millis(50));
    }
    b.exported_png();
    assert_eq!(b.js("return window.cryocubeDebug.glError()"), 0);
}

/// A deterministic, irregular test value with NaN holes.
fn wiggle(t: usize, d: usize, f: usize) -> f32 {
    let h = (t * 7919 + d * 104_729 + f * 1_299_709) % 1000;
    // Scattered holes, and one block that stays NaN at every level.
    if h < 37 || ((100..108).contains(&t) && d < 8 && f < 8) {
        f32::NAN
    } else {
        (h as f32 - 500.0) / 7.0
    }
}

fn write_tall_cube(root: &Path, shape: [usize; 3]) {
    let mut w = new_cube(root);
    w.add_array(ArraySpec {
        name: "v".into(),
        dims: vec!["time".into(), "distance".into(), "frequency".into()],
        shape: shape.iter().map(|&n| n as u64).collect(),
        chunks: vec![128, 16, 16],
        shard: None,
        dtype: DType::F32,
        attrs: Attrs::new(),
    })
    .unwrap();
    for a in 0..shape[0].div_ceil(128) {
        for b in 0..shape[1].div_ceil(16) {
            for c in 0..shape[2].div_ceil(16) {
                let mut chunk = Vec::new();
                for t in a * 128..a * 128 + 128 {
                    for d in b * 16..b * 16 + 16 {
                        for f in c * 16..c * 16 + 16 {
                            chunk.push(if t < shape[0] && d < shape[1] && f < shape[2] {
                                wiggle(t, d, f)
                            } else {
                                f32::NAN
                            });
                        }
                    }
                }
                w.write_chunk("v", &[a as u64, b as u64, c as u64], &chunk)
                    .unwrap();
            }
        }
    }
    w.finish(Attrs::new()).unwrap();
}

/// The reference next level: dimensions longer than 256 cells halved, each cell the mean of
/// the finite values of its block of the level before (NaN when there are none), computed here
/// independently of the crate.
fn halve(values: &[f64], shape: [usize; 3]) -> (Vec<f64>, [usize; 3]) {
    let f = shape.map(|n| if n > 256 { 2 } else { 1 });
    let out_shape = [0, 1, 2].map(|d| shape[d].div_ceil(f[d]));
    let mut out = Vec::new();
    for a in 0..out_shape[0] {
        for b in 0..out_shape[1] {
            for c in 0..out_shape[2] {
                let mut cells = Vec::new();
                for t in f[0] * a..(f[0] * (a + 1)).min(shape[0]) {
                    for d in f[1] * b..(f[1] * (b + 1)).min(shape[1]) {
                        for q in f[2] * c..(f[2] * (c + 1)).min(shape[2]) {
                            cells.push(values[(t * shape[1] + d) * shape[2] + q]);
                        }
                    }
                }
                let finite: Vec<f64> = cells.into_iter().filter(|v| v.is_finite()).collect();
                out.push(if finite.is_empty() {
                    f64::NAN
                } else {
                    // Stored as float32, as the levels are.
                    (finite.iter().sum::<f64>() / finite.len() as f64) as f32 as f64
                });
            }
        }
    }
    (out, out_shape)
}

/// `cryocube pyramid`: each level halves the dimensions still longer than 256 cells (NaN-
/// ignoring block means) and keeps the short ones; the server reads a face from the coarsest
/// level that still fills the screen and no coarser than it must be (a face across a short axis
/// stays the exact slice); a pyramid made before the cube changed is ignored.
/// A face's 16-bit cells (`body`, quantised between `lo` and `hi`) against the values they
/// stand for: within one quantisation step, NaN as 65535.
fn assert_quantised(body: &[u8], (lo, hi): (f64, f64), want: impl Fn(usize) -> f64) {
    for (i, q) in body.chunks_exact(2).enumerate() {
        let q = u16::from_le_bytes([q[0], q[1]]);
        let want = want(i);
        if want.is_nan() {
            assert_eq!(q, u16::MAX, "cell {i}");
        } else {
            let v = lo + q as f64 / 65534.0 * (hi - lo);
            assert!(
                (v - want).abs() <= (hi - lo) / 65534.0,
                "cell {i}: {v} vs {want}"
            );
        }
    }
}

#[test]
fn pyramid_levels_are_block_means_and_the_server_reads_the_fitting_one() {
    let tmp = tempfile::tempdir().unwrap();
    let cube = tmp.path().join("tall.zarr");
    let shape = [600usize, 300, 40];
    write_tall_cube(&cube, shape);
    let o = common::cryocube(&["pyramid", cube.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("pyramid of 2 level(s)"),
        "{}",
        common::text(&o)
    );

    let level0: Vec<f64> = (0..shape[0])
        .flat_map(|t| {
            (0..shape[1]).flat_map(move |d| (0..shape[2]).map(move |f| wiggle(t, d, f) as f64))
        })
        .collect();
    let (l1, s1) = halve(&level0, shape);
    let (l2, s2) = halve(&l1, s1);
    // Level 1 halves time and distance, level 2 time alone; frequency is never averaged.
    assert_eq!((s1, s2), ([300, 150, 40], [150, 150, 40]));
    for (k, (want, ws)) in [(1, (&l1, s1)), (2, (&l2, s2))] {
        let r = cryocube_cube::CubeReader::open(cube.join(format!(".pyramid/{k}"))).unwrap();
        let spec = r.array("v").unwrap();
        assert_eq!(spec.shape, ws.map(|n| n as u64).to_vec(), "level {k}");
        let got = r.read_all_f64("v").unwrap();
        let mut nans = 0;
        for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
            if w.is_nan() {
                assert!(g.is_nan(), "level {k} cell {i}: {g}, want NaN");
                nans += 1;
            } else {
                assert!(
                    (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "level {k} cell {i}: {g} vs {w}"
                );
            }
        }
        assert!(nans > 0, "the test wants NaN cells at level {k}");
    }
    // xarray-style readers still see one variable: the pyramid is outside the metadata.
    let info = common::cryocube(&["info", cube.to_str().unwrap()]);
    assert!(
        !common::text(&info).contains("pyramid"),
        "{}",
        common::text(&info)
    );

    let s = Server::start(&cube);
    let meta = s.json("/api/meta");
    assert_eq!(meta["levels"], 3);
    // `window`: "" for the whole slice, or "&r0=..&r1=..&c0=..&c1=..".
    let face_in = |axis: usize, index: usize, max: usize, window: &str| {
        let (status, head, body) = s.raw_with_head(
            "GET",
            &format!("/api/face?var=v&axis={axis}&index={index}&max={max}{window}"),
            s.addr(),
        );
        assert_eq!(status, 200, "{head}");
        let num = |k: &str| -> f64 {
            head.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}: ")))
                .unwrap_or_else(|| panic!("no {k} in {head}"))
                .trim()
                .parse()
                .unwrap()
        };
        let fields = ["x-face-level", "x-face-rows", "x-face-cols"];
        let [level, rows, cols] = fields.map(|k| num(k) as usize);
        let steps = [num("x-face-step-rows"), num("x-face-step-cols")].map(|n| n as usize);
        let origin = [num("x-face-origin-rows"), num("x-face-origin-cols")].map(|n| n as usize);
        assert_eq!(body.len(), rows * cols * 2, "{head}");
        (
            (level, rows, cols, steps),
            (num("x-face-min"), num("x-face-max")),
            body,
            origin,
        )
    };
    let face = |axis: usize, index: usize, max: usize| {
        let (shape, range, body, origin) = face_in(axis, index, max, "");
        assert_eq!(origin, [0, 0]);
        (shape, range, body)
    };
    // A time face (distance x frequency: 300 x 40, 150 x 40 at level 1, the same at level 2):
    // level 2 would only blend more time steps, so it is never read for it.
    // A frequency face (time x distance: 600 x 300, 300 x 150, 150 x 150).
    // A distance face (time x frequency: 600 x 40, 300 x 40, 150 x 40).
    for (axis, max, want) in [
        (0, 300, (0, 300, 40, [1, 1])),
        (0, 150, (1, 150, 40, [2, 1])),
        (0, 64, (1, 50, 14, [6, 3])),
        (0, 5, (1, 5, 2, [60, 30])),
        (2, 600, (0, 600, 300, [1, 1])),
        (2, 300, (1, 300, 150, [2, 2])),
        (2, 150, (2, 150, 150, [4, 2])),
        (1, 64, (2, 50, 14, [12, 3])),
    ] {
        assert_eq!(face(axis, 30, max).0, want, "axis {axis}, max {max}");
    }
    // A frequency face at full size is the stored slice; a smaller one comes from level 2,
    // whose cells average 4 time steps and 2 distances but never two frequencies: it is the
    // level-2 slice at the same frequency, quantised between the face's min and max.
    assert_eq!(face(2, 30, 600).0 .0, 0);
    let ((level, rows, cols, _), (lo, hi), body) = face(2, 30, 150);
    assert_eq!((level, rows, cols), (2, 150, 150));
    assert_quantised(&body, (lo, hi), |i| l2[i * s2[2] + 30]);
    // A window of a frequency face (times 101..251, distances 41..116) has the screen's cells
    // to itself: at max 150 it is the stored window cell for cell, from level 0; at max 40 it
    // comes from level 1 (76 x 38 cells of it there), from the level-1 cell holding its corner.
    let window = "&r0=101&r1=251&c0=41&c1=116";
    let ((level, rows, cols, steps), (lo, hi), body, origin) = face_in(2, 30, 150, window);
    assert_eq!(
        (level, rows, cols, steps, origin),
        (0, 150, 75, [1, 1], [101, 41])
    );
    assert_quantised(&body, (lo, hi), |i| {
        let (t, d) = (101 + i / 75, 41 + i % 75);
        level0[(t * shape[1] + d) * shape[2] + 30]
    });
    let ((level, rows, cols, steps), _, _, origin) = face_in(2, 30, 40, window);
    // Level-1 rows 50..126 and columns 20..58; every second row to stay within 40.
    assert_eq!(
        (level, rows, cols, steps, origin),
        (1, 38, 19, [4, 4], [100, 40])
    );
    // A window outside the slice, or half a window, is refused.
    for bad in [
        "&r0=0&r1=601&c0=0&c1=10",
        "&r0=5&r1=5&c0=0&c1=10",
        "&r0=0&r1=10",
    ] {
        let (status, _) = s.get(&format!("/api/face?var=v&axis=2&index=30&max=40{bad}"));
        assert_eq!(status, 400, "{bad}");
    }
    drop(s);

    // After the cube changes, its old pyramid is not used.
    let patch = tmp.path().join("p.yaml");
    std::fs::write(&patch, "metadata:\n  .zattrs:\n    title: changed\n").unwrap();
    let o = common::cryocube(&[
        "patch",
        cube.to_str().unwrap(),
        "--metadata",
        patch.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let s = Server::start(&cube);
    assert_eq!(s.json("/api/meta")["levels"], 1);
    let (_, head, _) = s.raw_with_head("GET", "/api/face?var=v&axis=2&index=30&max=150", s.addr());
    assert!(head.contains("x-face-level: 0"), "{head}");
}

/// Zarr stores written by xarray (v2 and v3, with a 2-D int8 variable beside the 3-D one, a
/// 2-D auxiliary coordinate and CF time in days) open in the viewer: the 3-D variable first,
/// the 2-D one as a map, not the coordinate, times labelled in UTC, values exact.
#[test]
fn xarray_written_zarr_opens_in_the_viewer() {
    let tmp = tempfile::tempdir().unwrap();
    let script = r#"
import sys, numpy as np, xarray as xr
out, fmt = sys.argv[1], int(sys.argv[2])
t = np.datetime64("2021-03-04T05:00") + np.arange(6) * np.timedelta64(1, "D")
v = np.arange(6 * 5 * 4, dtype="float32").reshape(6, 5, 4)
v[2, 1, 3] = np.nan
ds = xr.Dataset(
    {"v": (("time", "lat", "lon"), v, {"units": "K"}), "mask": (("lat", "lon"), np.ones((5, 4), "int8"))},
    coords={"time": t, "lat": np.linspace(-80, -60, 5), "lon": np.arange(4) * 10.0,
            "cell_area": (("lat", "lon"), np.full((5, 4), 2.5))},
)
ds.to_zarr(out, zarr_format=fmt, consolidated=True, mode="w")
"#;
    for fmt in ["2", "3"] {
        let out = tmp.path().join(format!("xr{fmt}.zarr"));
        python(script, &[out.to_str().unwrap(), fmt]);
        let s = Server::start(&out);
        let meta = s.json("/api/meta");
        let names: Vec<&str> = meta["variables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["v", "mask"], "zarr v{fmt}");
        assert_eq!(meta["variables"][1]["flat"], true);
        assert_eq!(s.json("/api/value?var=mask&i=0&j=4&k=3")["value"], 1.0);
        assert_eq!(meta["variables"][0]["units"], "K");
        assert_eq!(
            meta["axes"][0]["labels"][1], "2021-03-05T05:00:00Z",
            "zarr v{fmt}"
        );
        assert_eq!(meta["axes"][1]["values"][0], -80.0);
        let v = s.json("/api/value?var=v&i=4&j=3&k=2");
        assert_eq!(v["value"], ((4 * 5 + 3) * 4 + 2) as f64, "zarr v{fmt}");
        assert!(s.json("/api/value?var=v&i=2&j=1&k=3")["value"].is_null());
        let (status, body) = s.get("/api/face?var=v&axis=0&index=4&max=64");
        assert_eq!(
            status,
            200,
            "zarr v{fmt}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(body.len(), 5 * 4 * 2);
    }
}

/// What goes wrong when starting the viewer is said with the store or address, exit 1.
#[test]
fn view_refuses_what_it_cannot_show() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = common::cryocube(args);
        assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
        assert!(
            !common::text(&o).contains("panicked"),
            "{}",
            common::text(&o)
        );
        common::text(&o)
    };
    let missing = tmp.path().join("missing.zarr");
    let t = run(&["view", missing.to_str().unwrap(), "--port", "0"]);
    assert!(
        t.contains("missing.zarr") && t.contains("not a Zarr store"),
        "{t}"
    );

    // A store with only 1-D arrays has nothing to show as a box or a map.
    let flat = tmp.path().join("flat.zarr");
    let mut w = new_cube(&flat);
    w.add_array(ArraySpec {
        name: "h".into(),
        dims: vec!["x".into()],
        shape: vec![5],
        chunks: vec![5],
        shard: None,
        dtype: DType::F32,
        attrs: Attrs::new(),
    })
    .unwrap();
    w.write_all("h", &[1.0f32; 5]).unwrap();
    w.finish(Attrs::new()).unwrap();
    let t = run(&["view", flat.to_str().unwrap(), "--port", "0"]);
    assert!(
        t.contains("flat.zarr") && t.contains("no variable with two or three dimensions"),
        "{t}"
    );

    // A port that is taken.
    let cube = tmp.path().join("known.zarr");
    write_cube(&cube);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let t = run(&["view", cube.to_str().unwrap(), "--port", &port]);
    assert!(t.contains(&format!("127.0.0.1:{port}")), "{t}");

    // An unfinished cube is not served as if it were complete.
    std::fs::remove_file(cube.join(".zmetadata")).unwrap();
    std::fs::remove_file(cube.join(".zgroup")).unwrap();
    let t = run(&["view", cube.to_str().unwrap(), "--port", "0"]);
    assert!(t.contains("unfinished"), "{t}");
}

/// EPSG:3031 x/y in metres of (lat, lon) points, by GDAL's `gdaltransform` (PROJ): the
/// reference the page's own projection and graticule are checked against.
fn epsg3031(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut child = Command::new("gdaltransform")
        .args(["-s_srs", "EPSG:4326", "-t_srs", "EPSG:3031", "-output_xy"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gdaltransform (Debian gdal-bin, installed by `make test`)");
    let input: String = points
        .iter()
        .map(|(lat, lon)| format!("{lon} {lat}\n"))
        .collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .map(|l| {
            let v: Vec<f64> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            (v[0], v[1])
        })
        .collect()
}

/// Grid lines: a map written by rioxarray in EPSG:3031 gets latitude/longitude lines at the
/// places PROJ puts them (and its labels), in the screenshot and the PNG export; a variable
/// without a projection gets lines at its labelled cells; with grid lines off, neither.
#[test]
fn grid_lines_and_the_polar_graticule_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let cube = tmp.path().join("polar.zarr");
    // 200 x 200 cells of 15 km around the South Pole, north-up; a second variable on a
    // plain (row, col) grid.
    let script = r#"
import sys, numpy as np, xarray as xr, rioxarray
n, step = 200, 15000.0
x = -1_492_500.0 + step * np.arange(n)
y = 1_492_500.0 - step * np.arange(n)
h = xr.DataArray(np.full((n, n), 0.25, np.float32), dims=("y", "x"), coords={"y": y, "x": x})
plain = xr.DataArray(np.full((40, 60), 0.25, np.float32), dims=("row", "col"))
ds = xr.Dataset({"height": h, "plain": plain}).rio.write_crs("EPSG:3031")
ds.to_zarr(sys.argv[1], zarr_format=2, consolidated=True, mode="w")
"#;
    python(script, &[cube.to_str().unwrap()]);
    let s = Server::start(&cube);
    let meta = s.json("/api/meta");
    let var = |name: &str| {
        meta["variables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap()
            .clone()
    };
    // pyproj's CF attributes of EPSG:3031, as rioxarray writes them.
    let p = &var("height")["projection"];
    assert_eq!(p["pole"], -90.0, "{p}");
    assert_eq!(p["standard_parallel"], -71.0, "{p}");
    assert_eq!(p["lon0"], 0.0, "{p}");
    assert!(var("plain").get("projection").is_none());

    let b = Browser::start();
    let view = json!({
        "var": "height", "proj": "ortho", "cmap": "gray", "auto": false, "vmin": 0.0, "vmax": 1.0,
    });
    b.go(&view_url(&s.url, &view));
    b.wait_frames(1);
    // The page's projection is PROJ's, to a millimetre.
    let points = [(-75.0, 45.0), (-60.0, -120.0), (-89.9, 170.0), (-71.0, 0.0)];
    for ((lat, lon), (x, y)) in points.iter().zip(epsg3031(&points)) {
        let got = b.js(&format!(
            "return window.cryocubeDebug.polarXY({lat}, {lon})"
        ));
        let (gx, gy) = (got[0].as_f64().unwrap(), got[1].as_f64().unwrap());
        assert!(
            (gx - x).abs() < 1e-3 && (gy - y).abs() < 1e-3,
            "({lat}, {lon}): page ({gx}, {gy}), PROJ ({x}, {y})"
        );
    }
    let gray = [64u8; 3];
    // Screen position of a latitude/longitude, through PROJ and the cell-centre coordinates.
    let at = |lat: f64, lon: f64| {
        let (x, y) = epsg3031(&[(lat, lon)])[0];
        let tb = ((1_492_500.0 - y) / 15_000.0 + 0.5) / 200.0;
        let tc = ((x + 1_492_500.0) / 15_000.0 + 0.5) / 200.0;
        face_point(&b, 0, 1, tb, tc).unwrap()
    };
    // The brightest pixel within two pixels of (x, y): a line of 1 px may fall between two.
    let brightest = |img: &Image, (x, y): (f64, f64)| {
        let mut best = 0u8;
        for dy in -2..=2 {
            for dx in -2..=2 {
                let p = pixel(img, x + dx as f64, y + dy as f64);
                best = best.max(*p.iter().min().unwrap());
            }
        }
        best
    };

    // Off (the default): the data's gray everywhere.
    let off = b.screenshot();
    b.js("document.getElementById('grid').click()");
    b.wait_frames(2);
    let on = b.screenshot();
    let grid = b.js("return window.cryocubeGrid");
    let (lat_step, lon_step) = (
        grid["latStep"].as_f64().unwrap(),
        grid["lonStep"].as_f64().unwrap(),
    );
    // The whole pole in view: a handful of lines each way, not hundreds.
    assert!((1.0..=10.0).contains(&lat_step), "{grid}");
    assert!((10.0..=45.0).contains(&lon_step), "{grid}");
    let lat_on = -(80.0 / lat_step).round() * lat_step;
    let parallel = at(lat_on, lon_step / 2.0);
    let meridian = at(lat_on + lat_step / 2.0, lon_step);
    let between = at(lat_on + lat_step / 2.0, lon_step / 2.0);
    for (what, pt) in [("parallel", parallel), ("meridian", meridian)] {
        assert!(close(pixel(&off, pt.0, pt.1), gray, 3), "{what} off");
        let lit = brightest(&on, pt);
        assert!(lit >= 150, "{what} at {pt:?}: {lit}");
    }
    assert!(
        close(pixel(&on, between.0, between.1), gray, 3),
        "between the lines: {:?}",
        pixel(&on, between.0, between.1)
    );
    // Labelled: the parallel's latitude and a meridian's longitude are among the labels.
    assert!(grid["latRange"][0].as_f64().unwrap() <= -89.0, "{grid}");
    // The PNG export has the lines too.
    let png = b.exported_png();
    let (cx, cy) = canvas_origin(&b);
    let lit = brightest(&png, (parallel.0 - cx, parallel.1 - cy));
    assert!(lit >= 150, "PNG export, parallel: {lit}");

    // A variable without a projection: lines at round indices (rows 0, 5, .., 35 of 40;
    // columns 0, 10, .., 50 of 60), kept on while switching.
    b.js("const s = document.getElementById('var'); s.value = 'plain'; s.dispatchEvent(new Event('change'))");
    b.wait_frames(3);
    let img = b.screenshot();
    let row20 = face_point(&b, 0, 1, 20.5 / 40.0, 0.3).unwrap();
    let col30 = face_point(&b, 0, 1, 0.375, 30.5 / 60.0).unwrap();
    let neither = face_point(&b, 0, 1, 17.5 / 40.0, 0.3).unwrap();
    // (The automatic range of a constant, [v - 0.5, v + 0.5], draws it in the colormap's
    // middle: mid-gray here, which the lines lighten by about 56; a straight line of 1 px may
    // fall half on each of two pixels.)
    let base = *pixel(&img, neither.0, neither.1).iter().min().unwrap();
    assert!(brightest(&img, neither) <= base + 3, "between the lines");
    assert!(
        brightest(&img, row20) >= base + 40,
        "row 20: {} on {base}",
        brightest(&img, row20)
    );
    assert!(brightest(&img, col30) >= base + 40, "column 30");
}

/// Peak resident memory of a process, bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        * 1024
}

/// 40 concurrent maximal face requests (each a different 4000 x 4000 window of a
/// 4096 x 4096 map, asking for 8192 cells a side) keep the server within its cache budget
/// plus 100 MB, and each still gets a correct face (the right size, capped).
#[test]
fn concurrent_maximal_faces_stay_within_the_memory_budget() {
    const N: usize = 4096;
    let tmp = tempfile::tempdir().unwrap();
    let cube = tmp.path().join("big.zarr");
    let mut w = new_cube(&cube);
    w.add_array(ArraySpec {
        name: "v".into(),
        dims: vec!["y".into(), "x".into()],
        shape: vec![N as u64, N as u64],
        chunks: vec![512, 512],
        shard: None,
        dtype: DType::F32,
        attrs: Attrs::new(),
    })
    .unwrap();
    for cy in 0..N / 512 {
        for cx in 0..N / 512 {
            let chunk: Vec<f32> = (0..512 * 512)
                .map(|i| {
                    ((cy * 512 + i / 512) as f32 * 0.01).sin() + (cx * 512 + i % 512) as f32 * 1e-3
                })
                .collect();
            w.write_chunk("v", &[cy as u64, cx as u64], &chunk).unwrap();
        }
    }
    w.finish(Attrs::new()).unwrap();

    let cache_mb = 128u64;
    let server = Server::start_with(&cube, &["--cache-mb", &cache_mb.to_string()]);
    let addr = server.addr().to_string();
    let idle = peak_rss(server.child.id());
    let threads: Vec<_> = (0..40)
        .map(|k| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let path = format!(
                    "/api/face?var=v&axis=0&index=0&max=8192&r0={k}&r1={}&c0={}&c1={}",
                    k + 4000,
                    2 * k,
                    2 * k + 4000
                );
                let mut s = TcpStream::connect(&addr).unwrap();
                write!(
                    s,
                    "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                let mut out = Vec::new();
                s.read_to_end(&mut out).unwrap();
                String::from_utf8_lossy(
                    &out[..out.windows(4).position(|w| w == b"\r\n\r\n").unwrap()],
                )
                .to_ascii_lowercase()
            })
        })
        .collect();
    for t in threads {
        let head = t.join().unwrap();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        // 4000 cells a side thinned to at most 4 M cells: every 2nd, 2000 x 2000.
        assert!(
            head.contains("x-face-rows: 2000") && head.contains("x-face-cols: 2000"),
            "{head}"
        );
    }
    let peak = peak_rss(server.child.id());
    drop(server);
    let limit = (cache_mb << 20) + (100 << 20);
    assert!(
        peak <= limit,
        "peak RSS {} MiB (idle {} MiB) above cache {cache_mb} MiB + 100 MiB",
        peak >> 20,
        idle >> 20
    );
}

/// `--allow-host NAME` adds a name the server answers to (sharing on a LAN); any other
/// Host is still refused, and a request with two Host headers is refused outright.
#[test]
fn allowed_hosts_and_duplicate_host_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let cube = tmp.path().join("known.zarr");
    write_cube(&cube);
    let server = Server::start_with(&cube, &["--allow-host", "glacier-lab.local"]);
    let port = server.addr().rsplit(':').next().unwrap().to_string();
    let (status, _) = server.raw("GET", "/api/meta", &format!("glacier-lab.local:{port}"));
    assert_eq!(status, 200);
    let (status, _) = server.raw("GET", "/api/meta", "glacier-lab.local");
    assert_eq!(
        status, 200,
        "the name without the port, as some proxies send it"
    );
    let (status, body) = server.raw("GET", "/api/meta", &format!("evil.example:{port}"));
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("--allow-host"));
    // Two Host headers: the first would pass, the second names another server.
    let mut s = TcpStream::connect(server.addr()).unwrap();
    write!(
        s,
        "GET /api/meta HTTP/1.1\r\nHost: {}\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        server.addr()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let head = String::from_utf8_lossy(&out);
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
}

/// A cube that grows while it is shown (`das --append`, as `--follow` does): `/api/meta`
/// reports the new length, its values are served exactly, and the page with "follow the
/// latest time" on moves its time range to the new end, keeping its width.
#[test]
fn a_growing_cube_is_followed_to_its_latest_time() {
    let tmp = tempfile::tempdir().unwrap();
    let files = common::synthetic_files();
    let cube = tmp.path().join("live.zarr");
    let das = |file: &Path, extra: &[&str]| {
        let mut args = vec!["das", file.to_str().unwrap(), "-o", cube.to_str().unwrap()];
        args.extend(["--chunks", "64,8", "--record-paths", "-q"]);
        args.extend(extra);
        let o = common::cryocube(&args);
        assert!(o.status.success(), "{}", common::text(&o));
    };
    das(&files[0], &[]);
    let s = Server::start(&cube);
    let time_len = |m: &Value| m["variables"][0]["shape"][0].as_u64().unwrap();
    assert_eq!(time_len(&s.json("/api/meta")), 291);
    let b = Browser::start();
    // The last 100 windows, following.
    let hash = json!({"lo": [191, 0, 0], "hi": [291, 32, 101], "follow": true});
    b.go(&view_url(&s.url, &hash));
    b.wait_frames(1);
    assert_eq!(
        b.js("return window.cryocube.state.hi[0]").as_u64(),
        Some(291)
    );

    das(&files[1], &["--append"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while time_len(&s.json("/api/meta")) != 591 {
        assert!(
            Instant::now() < deadline,
            "the server never saw the cube grow"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let ours = cryocube_cube::CubeReader::open(&cube)
        .unwrap()
        .read_f64("spectrogram", &[500, 3, 25], &[1, 1, 1])
        .unwrap()[0];
    let v = s.json("/api/value?var=spectrogram&i=500&j=3&k=25");
    assert_eq!(v["value"].as_f64(), Some(ours));
    // Shown to float32 precision: the shortest text of the stored float32, not 17 digits.
    assert_eq!(v["text"], format!("{}", ours as f32));
    assert!(v["text"].as_str().unwrap().len() <= 12, "{v}");
    // No icon, and no 404 for it.
    assert_eq!(s.get("/favicon.ico").0, 204);
    loop {
        let range = b.js("return [window.cryocube.state.lo[0], window.cryocube.state.hi[0]]");
        if range == json!([491, 591]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the page did not follow: {range}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A quantised cube (`das --quantize`, CF-packed int16) is served unpacked: exact values are
/// the cube reader's (within half a step of the float cube), NaN for the fill code, and faces
/// are drawn from the unpacked values.
#[test]
fn a_quantised_cube_is_served_unpacked() {
    let tmp = tempfile::tempdir().unwrap();
    let input = common::das("synthetic");
    let (float, packed) = (tmp.path().join("f.zarr"), tmp.path().join("q.zarr"));
    for (out, extra) in [(&float, vec![]), (&packed, vec!["--quantize", "0.05"])] {
        let mut args = vec![
            "das",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-q",
        ];
        args.extend(extra);
        let o = common::cryocube(&args);
        assert!(o.status.success(), "{}", common::text(&o));
    }
    let s = Server::start(&packed);
    let f = cryocube_cube::CubeReader::open(&float).unwrap();
    for (i, j, k) in [(7u64, 5u64, 25u64), (400, 31, 60), (890, 0, 100)] {
        let exact = f.read_f64("spectrogram", &[i, j, k], &[1, 1, 1]).unwrap()[0];
        let shown = s.json(&format!("/api/value?var=spectrogram&i={i}&j={j}&k={k}"))["value"]
            .as_f64()
            .unwrap();
        assert!((shown - exact).abs() <= 0.025 + 1e-5, "{shown} vs {exact}");
        // A multiple of the step from the offset: the packed value, not the float.
        let offset = cryocube_cube::CubeReader::open(&packed)
            .unwrap()
            .array("spectrogram")
            .unwrap()
            .attrs["add_offset"]
            .as_f64()
            .unwrap();
        let steps = (shown - offset) / 0.05;
        assert!((steps - steps.round()).abs() < 1e-6, "{shown}");
    }
    let (status, body) = s.get("/api/face?var=spectrogram&axis=0&index=10&max=64");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

/// Sensible defaults (issue #17): a mask whose only value is 1 gets the range [0.5, 1.5], so
/// it is drawn in the colormap's middle, not its darkest end; on values that are all negative
/// (dB) the logarithmic option is off and disabled, with the reason beside it, even when a
/// link asks for it; no debug text is left on the picture once it is drawn.
#[test]
fn masks_and_negative_values_get_sensible_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("defaults.zarr");
    let script = r#"
import sys, numpy as np, xarray as xr
t = np.datetime64("2021-03-04T05:00") + np.arange(4) * np.timedelta64(1, "D")
neg = -10.0 - np.arange(4 * 6 * 5, dtype="float32").reshape(4, 6, 5)
ds = xr.Dataset(
    {"neg": (("time", "y", "x"), neg, {"units": "dB"}),
     "ones": (("y", "x"), np.ones((6, 5), "float32"), {"units": "1"})},
    coords={"time": t, "y": np.arange(6) * 1000.0, "x": np.arange(5) * 1000.0},
)
ds.to_zarr(sys.argv[1], zarr_format=2, consolidated=True, mode="w")
"#;
    python(script, &[out.to_str().unwrap()]);
    let s = Server::start(&out);
    let b = Browser::start();
    b.go(&view_url(&s.url, &json!({"var": "neg", "log": true})));
    b.wait_frames(1);
    let state = b.js("return window.cryocube.state");
    assert_eq!(state["log"], false, "{state}");
    assert_eq!(b.js("return document.getElementById('log').disabled"), true);
    assert!(b
        .js("return document.getElementById('logwhy').textContent")
        .as_str()
        .unwrap()
        .contains("positive"));
    assert_eq!(
        b.js("return document.getElementById('status').textContent"),
        ""
    );
    // Another hash on the same page does not reload it: reload, then wait for the new view.
    b.go(&view_url(&s.url, &json!({"var": "ones"})));
    b.js("location.reload()");
    let deadline = Instant::now() + Duration::from_secs(30);
    let state = loop {
        let st = b.js("return window.cryocube ? window.cryocube.state : null");
        if st["var"] == "ones" {
            break st;
        }
        assert!(Instant::now() < deadline, "the mask view never drew: {st}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        (state["vmin"].as_f64(), state["vmax"].as_f64()),
        (Some(0.5), Some(1.5)),
        "{state}"
    );
    // A mask is a class, not a quantity: no logarithm of it.
    assert_eq!(b.js("return document.getElementById('log').disabled"), true);
    let legend = b.js("return window.cryocubeDebug.legend()");
    assert_eq!(legend["categories"][0]["value"], 1.0, "{legend}");
}

/// Runs a Python `script` in the test venv (xarray, rioxarray, ...) with `args`; it must
/// succeed.
fn python(script: &str, args: &[&str]) {
    let o = Command::new(common::venv())
        .args(["-c", script])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
}

/// The 256 colours of a colormap as the page's table states them (`colormaps.js`).
fn colormap(name: &str) -> Vec<[u8; 3]> {
    let js = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../view/assets/colormaps.js"),
    )
    .unwrap();
    let start = js.find(&format!("\"{name}\": \"")).unwrap() + name.len() + 5;
    let hex = &js[start..start + 256 * 6];
    (0..256)
        .map(|i| {
            let c =
                |k: usize| u8::from_str_radix(&hex[i * 6 + k * 2..i * 6 + k * 2 + 2], 16).unwrap();
            [c(0), c(1), c(2)]
        })
        .collect()
}

/// The colour at t (0..1) of a colormap, linear between its 256 entries (as WebGL's linear
/// filtering of the table samples it).
fn colour_at(map: &[[u8; 3]], t: f64) -> [u8; 3] {
    let x = t.clamp(0.0, 1.0) * 255.0;
    let (i, f) = (x.floor() as usize, x - x.floor());
    let j = (i + 1).min(255);
    [0, 1, 2].map(|c| (map[i][c] as f64 * (1.0 - f) + map[j][c] as f64 * f).round() as u8)
}

/// Draws the view `change` (a JSON object merged into the page's state) and waits for it.
fn set_view(b: &Browser, change: Value) {
    b.js(&format!("return window.cryocubeDebug.setView({change})"));
}

/// The colour bar (issue #17): in the PNG export, beside the box, the bar's pixels at each
/// tick are the colormap's colour at the tick's value (computed here from the table), the
/// ticks are round values, the title is the long name with the display unit, NaN has its
/// swatch; tick labels at round UTC times carry the date once; no label overlaps another or
/// the legend from six angles; an axis seen end-on has no labels.
#[test]
fn colour_bar_ticks_and_labels_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let cube = tmp.path().join("known.zarr");
    write_cube(&cube);
    let s = Server::start(&cube);
    let b = Browser::start();
    let view = json!({
        "var": "power", "yaw": -0.6, "pitch": 0.45, "proj": "ortho", "cmap": "viridis",
        "auto": false, "vmin": 0.0, "vmax": 1.0, "nan": "magenta",
    });
    b.go(&view_url(&s.url, &view));
    b.wait_frames(1);
    let legend = b.js("return window.cryocubeDebug.legend()");
    assert_eq!(legend["title"], "known test values [dB]", "{legend}");
    let ticks: Vec<(f64, f64)> = legend["ticks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["value"].as_f64().unwrap(), t["y"].as_f64().unwrap()))
        .collect();
    assert!(ticks.len() >= 3, "{legend}");
    for (v, _) in &ticks {
        // 1-2-5 steps over 0..1: multiples of 0.1 or 0.2 or 0.5.
        assert!(((v * 10.0).round() - v * 10.0).abs() < 1e-9, "tick {v}");
    }
    assert!(ticks.iter().any(|(v, _)| *v == 0.0) && ticks.iter().any(|(v, _)| *v == 1.0));
    let viridis = colormap("viridis");
    let png = b.exported_png();
    let bar = &legend["bar"];
    let x = (bar["x0"].as_f64().unwrap() + bar["x1"].as_f64().unwrap()) / 2.0;
    for (v, y) in &ticks {
        // The row just inside the bar at the ends.
        let y = y.clamp(
            bar["y0"].as_f64().unwrap() + 0.5,
            bar["y1"].as_f64().unwrap() - 1.0,
        );
        let got = pixel(&png, x, y.floor());
        let want = colour_at(&viridis, *v);
        assert!(
            close(got, want, 3),
            "tick {v} at y {y}: {got:?}, viridis {want:?}"
        );
    }
    let nan = &legend["nan"];
    assert_eq!(
        pixel(&png, nan["x"].as_f64().unwrap(), nan["y"].as_f64().unwrap()),
        [255, 0, 255]
    );

    // Time labels at round times: the date on the first only (one day), then the clock.
    let labels = b.js("return window.cryocubeDebug.labels()");
    let texts: Vec<&str> = labels
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    let times: Vec<&&str> = texts.iter().filter(|t| t.contains("00:00:0")).collect();
    assert!(times.len() >= 2, "{texts:?}");
    assert!(times[0].starts_with("2020-07-22 "), "{texts:?}");
    assert!(times[1..].iter().all(|t| !t.contains("2020")), "{texts:?}");
    assert!(texts.contains(&"time (UTC)"), "{texts:?}");
    assert!(texts.contains(&"frequency (Hz)"), "{texts:?}");
    // Distance 0..116 m: round metres.
    for t in texts.iter().filter(|t| t.parse::<f64>().is_ok()) {
        let v: f64 = t.parse().unwrap();
        assert_eq!(v % 5.0, 0.0, "{texts:?}");
    }

    // No two texts overlap, nor the legend, whichever way the box is turned.
    let legend_box: Vec<f64> = serde_json::from_value(legend["box"].clone()).unwrap();
    for (yaw, pitch) in [
        (-0.6, 0.45),
        (0.3, 0.2),
        (2.0, -0.5),
        (-2.6, 1.0),
        (0.0, 1.5),
        (1.57, 0.0),
    ] {
        set_view(&b, json!({"yaw": yaw, "pitch": pitch}));
        let boxes: Vec<(String, Vec<f64>)> = b
            .js("return window.cryocubeDebug.labels()")
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["text"].as_str().unwrap().to_string(),
                    serde_json::from_value(l["box"].clone()).unwrap(),
                )
            })
            .collect();
        assert!(boxes.len() >= 4, "({yaw}, {pitch}): {boxes:?}");
        let hit = |a: &[f64], b: &[f64]| a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
        for (i, (ta, a)) in boxes.iter().enumerate() {
            assert!(!hit(a, &legend_box), "({yaw}, {pitch}): {ta} on the legend");
            for (tb, bb) in &boxes[..i] {
                assert!(
                    !hit(a, bb),
                    "({yaw}, {pitch}): {ta:?} {a:?} overlaps {tb:?} {bb:?}"
                );
            }
        }
    }
    // The preset "distance × frequency" looks straight at that face: time is seen end-on
    // and has no label.
    b.act("[...document.querySelectorAll('#presets button')].find((e) => e.textContent === 'distance × frequency').click()");
    let state = b.js("return window.cryocube.state");
    assert_eq!(
        (state["yaw"].as_f64(), state["pitch"].as_f64()),
        (Some(0.0), Some(0.0)),
        "{state}"
    );
    let texts = b.js("return window.cryocubeDebug.labels().map((l) => l.text)");
    assert!(
        !texts.as_array().unwrap().iter().any(|t| t == "time (UTC)"),
        "{texts}"
    );

    // Typed UTC times select the nearest cells (time steps are 0.1 s from 00:00:00).
    for (id, text) in [
        ("from0", "2020-07-22T00:00:01Z"),
        ("to0", "2020-07-22 00:00:01.52"),
    ] {
        b.act(&format!(
            "const e = document.getElementById('{id}'); e.value = '{text}'; e.dispatchEvent(new Event('change'))"
        ));
    }
    let state = b.js("return window.cryocube.state");
    assert_eq!(
        (state["lo"][0].clone(), state["hi"][0].clone()),
        (json!(10), json!(16)),
        "{state}"
    );
    // A typed number on the distance axis (4 m steps): 10 m is nearest cell 2 (8 m) or 3
    // (12 m); 10.1 m is cell 3.
    b.act("const e = document.getElementById('from1'); e.value = '10.1'; e.dispatchEvent(new Event('change'))");
    assert_eq!(b.js("return window.cryocube.state.lo[1]"), 3);
    // Text that is no time is marked, and changes nothing.
    b.js("const e = document.getElementById('from0'); e.value = 'yesterday'; e.dispatchEvent(new Event('change'))");
    assert_eq!(
        b.js("return document.getElementById('from0').classList.contains('bad')"),
        true
    );
    assert_eq!(b.js("return window.cryocube.state.lo[0]"), 10);
}

/// A polar map cube of three layers on EPSG:3031 (50 km cells over the continent): a bed
/// ramp, a mask of ones over a few cells (NaN elsewhere), and int8 classes 0..3.
fn write_polar_layers(out: &Path) {
    let script = r#"
import sys, numpy as np, xarray as xr, rioxarray
n, step = 120, 50000.0
x = -2_975_000.0 + step * np.arange(n)
y = 2_975_000.0 - step * np.arange(n)
bed = (np.arange(n)[:, None] * 10.0 + np.arange(n)[None, :]).astype("float32")
mask = np.full((n, n), np.nan, "float32")
mask[40:44, 70:75] = 1.0
classes = ((np.arange(n)[:, None] // 30 + np.arange(n)[None, :] * 0) % 4).astype("int8")
dims = ("y", "x")
ds = xr.Dataset(
    {"bed": (dims, bed, {"units": "m", "long_name": "bed elevation"}),
     "mask": (dims, mask, {"units": "1", "long_name": "lake mask"}),
     "classes": (dims, classes, {"long_name": "classes"})},
    coords={"y": y, "x": x},
).rio.write_crs("EPSG:3031")
ds.to_zarr(sys.argv[1], zarr_format=2, consolidated=True, mode="w")
"#;
    python(script, &[out.to_str().unwrap()]);
}

/// The first vertex of a polygon layer's first feature, as `ogrinfo` prints it.
fn first_vertex(shp: &Path) -> (f64, f64) {
    let o = Command::new("ogrinfo")
        .args(["-al", "-q", "-fid", "0"])
        .arg(shp)
        .output()
        .expect("ogrinfo (gdal-bin)");
    let text = String::from_utf8_lossy(&o.stdout);
    let at = text
        .find("((")
        .unwrap_or_else(|| panic!("no polygon in {}", &text[..text.len().min(500)]));
    let mut it = text[at..]
        .trim_start_matches('(')
        .split([' ', ','])
        .filter(|s| !s.is_empty());
    let mut next = || {
        it.next()
            .unwrap()
            .trim_end_matches(')')
            .parse::<f64>()
            .unwrap()
    };
    (next(), next())
}

/// Latitude/longitude of EPSG:3031 points, by PROJ (gdaltransform).
fn latlon_of_3031(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut child = Command::new("gdaltransform")
        .args(["-s_srs", "EPSG:3031", "-t_srs", "EPSG:4326", "-output_xy"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gdaltransform (Debian gdal-bin, installed by `make test`)");
    let input: String = points.iter().map(|(x, y)| format!("{x} {y}\n")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Vec<f64> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            (v[1], v[0]) // EPSG:4326 with -output_xy: lon lat
        })
        .collect()
}

/// Overlays, hover and layer defaults on a polar map (issue #17): the MEaSUREs coastline and
/// a GeoJSON line in latitude/longitude are reprojected onto the cube (the coastline's extent
/// equals ogrinfo's), a vertex of the line is drawn at the pixel its EPSG:3031 coordinates
/// (PROJ) give through the cell grid computed here, in the PNG export too, and not once the
/// overlay is switched off; hover gives latitude/longitude equal to PROJ's and clears when
/// the variable changes, which keeps the region; a mask of ones over NaN is drawn in its
/// legend's colour, apart from the background; int8 classes get swatches of their cells'
/// colours.
#[test]
fn overlays_hover_and_layer_defaults_on_a_polar_map() {
    let tmp = tempfile::tempdir().unwrap();
    let cube = tmp.path().join("polar.zarr");
    write_polar_layers(&cube);
    let vector = common::shared().join("data/polar/vector/measures_boundaries_v2");
    let coast = vector.join("Coastline_Antarctica_v02.shp");
    let grounding = vector.join("GroundingLine_Antarctica_v02.shp");
    // A line of three vertices given in latitude/longitude (EPSG:4326, GeoJSON's CRS).
    let points = [(-75.0, -100.0), (-72.0, -60.0), (-80.0, 40.0)];
    let line = tmp.path().join("route.geojson");
    let coords: Vec<Value> = points.iter().map(|(lat, lon)| json!([lon, lat])).collect();
    std::fs::write(
        &line,
        json!({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
            "geometry": {"type": "LineString", "coordinates": coords}}]})
        .to_string(),
    )
    .unwrap();
    let s = Server::start_with(
        &cube,
        &[
            "--overlay",
            coast.to_str().unwrap(),
            "--overlay",
            line.to_str().unwrap(),
            "--overlay",
            grounding.to_str().unwrap(),
        ],
    );
    let ov = s.json("/api/overlays");
    let list = ov["overlays"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{}", list.len());
    assert_eq!(list[0]["name"], "Coastline_Antarctica_v02");
    assert_eq!(list[1]["name"], "route");
    assert_eq!(list[2]["name"], "GroundingLine_Antarctica_v02");
    // The coastline's extent equals ogrinfo's within a quarter cell (thinning keeps vertices
    // a quarter cell apart).
    let (mut lo, mut hi) = ([f64::MAX; 2], [f64::MIN; 2]);
    for path in list[0]["paths"].as_array().unwrap() {
        for (k, v) in path.as_array().unwrap().iter().enumerate() {
            let v = v.as_f64().unwrap();
            lo[k % 2] = lo[k % 2].min(v);
            hi[k % 2] = hi[k % 2].max(v);
        }
    }
    let o = Command::new("ogrinfo")
        .args(["-so", "-al", coast.to_str().unwrap()])
        .output()
        .expect("ogrinfo (gdal-bin)");
    let info = String::from_utf8_lossy(&o.stdout).to_string();
    let ext: Vec<f64> = info
        .lines()
        .find(|l| l.starts_with("Extent:"))
        .unwrap_or_else(|| panic!("{info}"))
        .replace(['(', ')', ','], " ")
        .replace(" - ", " ")
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    // "Extent: (x0, y0) - (x1, y1)"
    let want = [ext[0], ext[1], ext[2], ext[3]];
    let got = [lo[0], lo[1], hi[0], hi[1]];
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 12_500.0,
            "coastline extent {got:?}, ogrinfo {want:?}"
        );
    }

    let b = Browser::start();
    let view = json!({"var": "bed", "proj": "ortho", "cmap": "gray", "auto": false, "vmin": 1e6, "vmax": 2e6});
    b.go(&view_url(&s.url, &view));
    b.wait_frames(1);
    // Each vertex of the line through PROJ and the cell-centre grid (row 0 at y 2 975 000).
    let at = |x: f64, y: f64| {
        let tb = ((2_975_000.0 - y) / 50_000.0 + 0.5) / 120.0;
        let tc = ((x + 2_975_000.0) / 50_000.0 + 0.5) / 120.0;
        face_point(&b, 0, 1, tb, tc).unwrap()
    };
    let orange = |p: [u8; 3]| p[0] >= 180 && p[2] <= 90 && p[1] >= 100;
    let near = |img: &Image, (x, y): (f64, f64), r: i32| {
        (-r..=r).any(|dy| (-r..=r).any(|dx| orange(pixel(img, x + dx as f64, y + dy as f64))))
    };
    let (cx, cy) = canvas_origin(&b);
    let png = b.exported_png();
    let shot = b.screenshot();
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("view-polar.png"),
        &shot.3,
    )
    .unwrap();
    let xy = epsg3031(&points);
    // The middle vertex (a bend of the line: the line passes through it).
    let (vx, vy) = at(xy[1].0, xy[1].1);
    assert!(
        near(&shot, (vx, vy), 2),
        "vertex at ({vx}, {vy}): {:?}",
        pixel(&shot, vx, vy)
    );
    assert!(
        near(&png, (vx - cx, vy - cy), 2),
        "PNG export: vertex not drawn"
    );
    // Away from the line: the data's black (below vmin).
    let (ax, ay) = at(xy[1].0 + 400_000.0, xy[1].1 + 400_000.0);
    assert!(!near(&shot, (ax, ay), 2), "{:?}", pixel(&shot, ax, ay));
    // Switched off: gone.
    b.act("document.querySelector('#overlaylist input[data-n=\"1\"]').click()");
    assert!(!near(&b.screenshot(), (vx, vy), 2), "the overlay is off");
    // The first vertex of the coastline (white) and of the grounding line (cyan), each alone,
    // at the pixel of their coordinates as ogrinfo prints them.
    let white = |p: [u8; 3]| p.iter().all(|&c| c >= 200);
    let cyan = |p: [u8; 3]| p[0] <= 90 && p[1] >= 150 && p[2] >= 180;
    let lit = |img: &Image, (x, y): (f64, f64), is: &dyn Fn([u8; 3]) -> bool| {
        (-2..=2).any(|dy| (-2..=2).any(|dx| is(pixel(img, x + dx as f64, y + dy as f64))))
    };
    b.act("document.querySelector('#overlaylist input[data-n=\"2\"]').click()");
    let (x, y) = first_vertex(&coast);
    let at_coast = at(x, y);
    assert!(
        lit(&b.screenshot(), at_coast, &white),
        "coastline vertex ({x}, {y}) not drawn"
    );
    b.act("document.querySelector('#overlaylist input[data-n=\"0\"]').click()");
    b.act("document.querySelector('#overlaylist input[data-n=\"2\"]').click()");
    let (x, y) = first_vertex(&grounding);
    let img = b.screenshot();
    assert!(
        lit(&img, at(x, y), &cyan),
        "grounding line vertex ({x}, {y}) not drawn"
    );
    assert!(
        !lit(&img, at_coast, &white) || at_coast == at(x, y),
        "the coastline is off"
    );
    b.act("document.querySelector('#overlaylist input[data-n=\"0\"]').click()");

    // Hover: latitude/longitude of the cell centre, as PROJ has them.
    let (hx, hy) = at(-1_025_000.0, 525_000.0);
    let hover = b.hover_at(hx, hy);
    assert_eq!(hover["index"], json!([0, 49, 39]), "{hover}");
    let (lat, lon) = latlon_of_3031(&[(-1_025_000.0, 525_000.0)])[0];
    let (glat, glon) = (
        hover["latlon"][0].as_f64().unwrap(),
        hover["latlon"][1].as_f64().unwrap(),
    );
    assert!(
        (glat - lat).abs() < 1e-6 && (glon - lon).abs() < 1e-6,
        "page ({glat}, {glon}), PROJ ({lat}, {lon})"
    );
    let text = b.js("return document.getElementById('hover').textContent");
    assert!(text.as_str().unwrap().contains("bed = 529 m"), "{text}");
    assert!(text.as_str().unwrap().contains("°S"), "{text}");

    // A region, then another variable of the same grid: the hover clears, the region stays.
    set_view(&b, json!({"lo": [0, 20, 50], "hi": [1, 80, 100]}));
    b.act("const s = document.getElementById('var'); s.value = 'mask'; s.dispatchEvent(new Event('change'))");
    assert_eq!(
        b.js("return document.getElementById('hover').textContent"),
        ""
    );
    assert!(b.js("return window.cryocubeHover").is_null());
    let state = b.js("return window.cryocube.state");
    assert_eq!(
        (state["lo"].clone(), state["hi"].clone()),
        (json!([0, 20, 50]), json!([1, 80, 100])),
        "{state}"
    );
    // The mask: one class, drawn in its swatch's colour; NaN as the background (sparse).
    let legend = b.js("return window.cryocubeDebug.legend()");
    let cats = legend["categories"].as_array().unwrap();
    assert_eq!(cats.len(), 1, "{legend}");
    let swatch: [u8; 3] = serde_json::from_value(cats[0]["rgb"].clone()).unwrap();
    let img = b.screenshot();
    let cell = |row: f64, col: f64| {
        face_point(
            &b,
            0,
            1,
            (row + 0.5 - 20.0) / 60.0,
            (col + 0.5 - 50.0) / 50.0,
        )
        .unwrap()
    };
    let (mx, my) = cell(41.0, 72.0);
    let inside = pixel(&img, mx, my);
    assert!(
        close(inside, swatch, 3),
        "mask cell {inside:?}, legend {swatch:?}"
    );
    let background = [22u8, 24, 28];
    assert!(
        !close(inside, background, 40),
        "{inside:?} is near the background"
    );
    let (nx, ny) = cell(30.0, 60.0);
    assert!(
        close(pixel(&img, nx, ny), background, 1),
        "NaN: {:?}",
        pixel(&img, nx, ny)
    );

    // Classes 0..3 (int8, a band per 30 rows): one swatch each, in their cells' colour.
    b.act("const s = document.getElementById('var'); s.value = 'classes'; s.dispatchEvent(new Event('change'))");
    set_view(&b, json!({"lo": [0, 0, 0], "hi": [1, 120, 120]}));
    let legend = b.js("return window.cryocubeDebug.legend()");
    let cats = legend["categories"].as_array().unwrap();
    let values: Vec<f64> = cats.iter().map(|c| c["value"].as_f64().unwrap()).collect();
    assert_eq!(values, [0.0, 1.0, 2.0, 3.0], "{legend}");
    let img = b.screenshot();
    for c in cats {
        let k = c["value"].as_f64().unwrap();
        // At the western edge: no coastline there.
        let (x, y) = face_point(&b, 0, 1, (k * 30.0 + 15.5) / 120.0, 0.03).unwrap();
        let want: [u8; 3] = serde_json::from_value(c["rgb"].clone()).unwrap();
        assert!(
            close(pixel(&img, x, y), want, 3),
            "class {k}: {:?} vs {want:?}",
            pixel(&img, x, y)
        );
    }
}

/// Animation export (issue #17): the page records the time steps asked for as a WebM that
/// ffprobe reads as VP8 with exactly that many frames; ffmpeg's first frame carries the
/// colour bar (its colours at the ticks, within VP8's loss) and the time label.
#[test]
fn webm_export_has_the_frames_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let cube = tmp.path().join("known.zarr");
    write_cube(&cube);
    let s = Server::start(&cube);
    let b = Browser::start();
    let view = json!({"var": "power", "proj": "ortho", "cmap": "viridis", "auto": false, "vmin": 0.0, "vmax": 1.0});
    b.go(&view_url(&s.url, &view));
    b.wait_frames(1);
    let b64 = b.js("return window.cryocubeDebug.webm({dim: 0, from: 2, to: 13, fps: 6})");
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.as_str().expect("a WebM"))
        .unwrap();
    let file = tmp.path().join("anim.webm");
    std::fs::write(&file, &bytes).unwrap();
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,nb_read_frames,width,height",
            "-of",
            "json",
        ])
        .arg(&file)
        .output()
        .expect("ffprobe (Debian ffmpeg, installed by `make test`)");
    assert!(o.status.success(), "{}", common::text(&o));
    let probe: Value = serde_json::from_slice(&o.stdout).unwrap();
    let stream = &probe["streams"][0];
    assert_eq!(stream["codec_name"], "vp8", "{probe}");
    assert_eq!(stream["nb_read_frames"], "12", "{probe}");
    // The view is back where it was.
    let state = b.js("return window.cryocube.state");
    assert_eq!(state["lo"][0], 0, "{state}");

    let first = tmp.path().join("first.png");
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&file)
        .args(["-frames:v", "1"])
        .arg(&first)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
    let png = std::fs::read(&first).unwrap();
    let img = decode_png(&base64::engine::general_purpose::STANDARD.encode(&png));
    let legend = b.js("return window.cryocubeDebug.legend()");
    let bar = &legend["bar"];
    let x = (bar["x0"].as_f64().unwrap() + bar["x1"].as_f64().unwrap()) / 2.0;
    let viridis = colormap("viridis");
    for t in legend["ticks"].as_array().unwrap() {
        let (v, y) = (t["value"].as_f64().unwrap(), t["y"].as_f64().unwrap());
        let y = y.clamp(
            bar["y0"].as_f64().unwrap() + 2.0,
            bar["y1"].as_f64().unwrap() - 3.0,
        );
        let got = pixel(&img, x, y.floor());
        assert!(close(got, colour_at(&viridis, v), 24), "tick {v}: {got:?}");
    }
    // The time label of the first frame (time step 2) in white in the top left corner.
    let white = (12..200)
        .flat_map(|x| (8..28).map(move |y| (x, y)))
        // Whiter than any axis label (#cfd8e3) after VP8's loss.
        .filter(|&(x, y)| pixel(&img, x as f64, y as f64).iter().all(|&c| c > 243))
        .count();
    assert!(white >= 20, "no label text: {white} white pixels");
}

/// A polar cube built from a recipe offers its own vector sources as overlays (issue #17):
/// the zipped DML lakes shapefile and the lakes shapefile, found in the `--sources` folder the
/// build fetched them to; the zipped one's outlines are those of the shapefile inside it
/// (ring count as ogrinfo gives the features of single polygons). A shapefile without .prj
/// is a clear error naming the file.
#[test]
fn a_recipe_cube_offers_its_vector_sources_as_overlays() {
    let tmp = tempfile::tempdir().unwrap();
    let polar = common::shared().join("data/polar");
    let file = |rel: &str| format!("file://{}", polar.join(rel).display());
    let recipe = tmp.path().join("cube.geojson");
    std::fs::write(
        &recipe,
        json!({
            "type": "Feature", "geometry": null,
            "properties": {
                "spatial_ref": "EPSG:3031", "spatial_bbox": [-3.0e6, -3.0e6, 3.0e6, 3.0e6], "spatial_res": [50000, 50000],
                "variables": [{"name": "dml_lake_area", "dims": ["y", "x"]}, {"name": "lakes", "dims": ["y", "x"]}],
                "sources": [
                    {"name": "DML lakes", "download_url": file("vector/subglacial_lakes/DML_Lakes_Combined.zip"),
                     "compressed": true, "compression_format": "zip", "source_format": "shp",
                     "processing": {"rasterize": {"attribute": "Area", "all_touched": true}, "outputs": [{"name": "dml_lake_area"}]}},
                    {"name": "Lakes", "variable_names": ["lakes"], "download_url": file("vector/subglacial_lakes/SiegfriedFricker2018_outlines.shp"),
                     "processing": {"rasterize": {"all_touched": true}}}
                ]
            }
        })
        .to_string(),
    )
    .unwrap();
    let out = tmp.path().join("lakes.zarr");
    let sources = tmp.path().join("sources");
    let o = Command::new(env!("CARGO_BIN_EXE_cryocube"))
        .args([
            "build",
            recipe.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--sources",
            sources.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
    let s = Server::start_with(&out, &["--sources", sources.to_str().unwrap()]);
    let ov = s.json("/api/overlays");
    let names: Vec<&str> = ov["overlays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.contains(&"SiegfriedFricker2018_outlines"),
        "{names:?}"
    );
    // The SF2018 outlines: 131 lakes, one ring each (ogrinfo counts the features).
    let sf = ov["overlays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "SiegfriedFricker2018_outlines")
        .unwrap();
    let o = Command::new("ogrinfo")
        .args(["-so", "-al"])
        .arg(polar.join("vector/subglacial_lakes/SiegfriedFricker2018_outlines.shp"))
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&o.stdout).to_string();
    let count: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Feature Count: "))
        .unwrap_or_else(|| panic!("{info}"))
        .trim()
        .parse()
        .unwrap();
    assert!(
        sf["paths"].as_array().unwrap().len() >= count,
        "{} rings, {count} features",
        sf["paths"].as_array().unwrap().len()
    );
    drop(s);

    // Elsewhere (no such folder): no overlay, no failure.
    let s = Server::start_with(
        &out,
        &["--sources", tmp.path().join("nowhere").to_str().unwrap()],
    );
    assert_eq!(s.json("/api/overlays")["overlays"], json!([]));
    drop(s);

    // A shapefile without .prj: refused, naming the file.
    let no_prj = polar.join("vector/thwaites_grounding_zone_no_prj/GL_VARIABILITY.shp");
    let o = Command::new(env!("CARGO_BIN_EXE_cryocube"))
        .args([
            "view",
            out.to_str().unwrap(),
            "--port",
            "0",
            "--overlay",
            no_prj.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    let err = common::text(&o);
    assert!(
        err.contains("GL_VARIABILITY.shp") && err.contains("no CRS"),
        "{err}"
    );
}

/// A lake mask on time x y x with data in its first epoch only (issue #17): the page opens
/// turned to that epoch's face (the default view shows the last), draws NaN as the
/// background (under 5 % valid) with the box's outline around it, and the mask in its
/// legend's colour.
#[test]
fn a_sparse_volume_opens_on_its_faces_with_data() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("lakes.zarr");
    let script = r#"
import sys, numpy as np, xarray as xr
t = np.datetime64("2013-01-01") + np.arange(3) * np.timedelta64(365, "D")
m = np.full((3, 40, 50), np.nan, "float32")
m[0, 10:16, 20:28] = 1.0
ds = xr.Dataset({"lakes": (("time", "y", "x"), m, {"units": "1"})},
                coords={"time": t, "y": 1000.0 * np.arange(40), "x": 1000.0 * np.arange(50)})
ds.to_zarr(sys.argv[1], zarr_format=2, consolidated=True, mode="w")
"#;
    python(script, &[out.to_str().unwrap()]);
    let s = Server::start(&out);
    let b = Browser::start();
    b.go(&format!("{}/", s.url));
    // The first frame shows the default side; the page then turns (a second frame).
    b.wait_frames(2);
    let visible: Vec<(usize, usize)> =
        serde_json::from_value(b.js("return window.cryocubeDebug.visible()")).unwrap();
    assert!(
        visible.contains(&(0, 0)),
        "the first epoch's face is not in view: {visible:?}"
    );
    let legend = b.js("return window.cryocubeDebug.legend()");
    let swatch: [u8; 3] = serde_json::from_value(legend["categories"][0]["rgb"].clone()).unwrap();
    let img = b.screenshot();
    // A mask cell of the first epoch, and a NaN cell of the same face.
    let (x, y) = face_point(&b, 0, 0, 12.5 / 40.0, 23.5 / 50.0).unwrap();
    assert!(
        close(pixel(&img, x, y), swatch, 3),
        "{:?} vs {swatch:?}",
        pixel(&img, x, y)
    );
    let (x, y) = face_point(&b, 0, 0, 30.5 / 40.0, 40.5 / 50.0).unwrap();
    assert!(
        close(pixel(&img, x, y), [22, 24, 28], 1),
        "NaN: {:?}",
        pixel(&img, x, y)
    );
    // The outline: light pixels just left of the box's leftmost corner (on its silhouette;
    // the faces there are NaN, drawn as the background).
    let corners: Vec<(f64, f64)> = [0, 1]
        .iter()
        .flat_map(|&side| {
            [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)].map(|(tb, tc)| (side, tb, tc))
        })
        .map(|(side, tb, tc)| face_point(&b, 0, side, tb, tc).unwrap())
        .collect();
    let (cx, cy) = corners
        .iter()
        .copied()
        .fold((f64::MAX, 0.0), |a, c| if c.0 < a.0 { c } else { a });
    let lit = (-3..=0)
        .flat_map(|d| (-2..=2).map(move |e| (d, e)))
        .any(|(dx, dy)| {
            pixel(&img, cx - 1.0 + dx as f64, cy + dy as f64)
                .iter()
                .all(|&c| c > 80)
        });
    assert!(lit, "no outline left of ({cx}, {cy})");
}

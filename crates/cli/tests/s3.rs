//! Object storage against a real S3 server (Garage on 127.0.0.1, started here): cubes written
//! to and read from `s3://`, sources fetched from `s3://`, an interrupted build resumed on S3,
//! and the errors a user meets (bad credentials, no bucket, missing source, foreign prefix).

mod common;

use std::path::Path;

use common::{
    assert_same_stores, cryocube, cryocube_with, das, kill_after_blocks_in, p, shared, store_keys,
    text, venv, Garage,
};
use cryocube_cube::store::{LocalStore, Store};

fn example_recipe() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/polar-standin/cube.geojson")
}

/// Uploads every file the example recipe names (shapefile sidecars too) to
/// `s3://test/sources/…` and writes the recipe with those URLs into `dir`.
fn s3_recipe(g: &Garage, dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(example_recipe()).unwrap();
    let polar = shared().join("data/polar");
    let recipe: serde_json::Value = serde_json::from_str(&text).unwrap();
    let client = g.client();
    for s in recipe["properties"]["sources"].as_array().unwrap() {
        let url = s["download_url"].as_str().unwrap();
        let rel = url
            .strip_prefix("file://${CRYOCUBE_SHARED}/data/polar/")
            .unwrap();
        let mut files = vec![rel.to_string()];
        if let Some(stem) = rel.strip_suffix(".shp") {
            for ext in ["shx", "dbf", "prj", "cpg"] {
                if polar.join(format!("{stem}.{ext}")).is_file() {
                    files.push(format!("{stem}.{ext}"));
                }
            }
        }
        for f in files {
            let bytes = std::fs::read(polar.join(&f)).unwrap();
            client.put("test", &format!("sources/{f}"), &bytes).unwrap();
        }
    }
    let path = dir.join("cube-s3.geojson");
    std::fs::write(
        &path,
        text.replace(
            "file://${CRYOCUBE_SHARED}/data/polar/",
            "s3://test/sources/",
        ),
    )
    .unwrap();
    path
}

/// Keys holding data (chunks), with their bytes: what must not depend on where sources or
/// the cube live.
fn chunks(store: &dyn Store) -> Vec<(String, Vec<u8>)> {
    store_keys(store)
        .into_iter()
        .filter(|(k, _)| !k.ends_with(".zattrs") && !k.ends_with(".zmetadata"))
        .collect()
}

/// The example recipe with every source on S3, built onto S3: the same bytes as the same
/// build onto a local folder, the same data chunks as the build from the local files; info,
/// patch and xarray (through s3fs, an independent S3 client) read it; an existing output is
/// refused without --overwrite and replaced with it.
#[test]
fn recipe_cube_on_s3_from_s3_sources() {
    let g = Garage::start();
    let env = g.env();
    let tmp = tempfile::tempdir().unwrap();
    let recipe = s3_recipe(&g, tmp.path());
    let build = |recipe: &Path, out: &str, sources: &Path, extra: &[&str]| {
        let mut args = vec![
            "build",
            p(recipe),
            "-o",
            out,
            "--sources",
            p(sources),
            "--res",
            "5250",
            "--chunk",
            "128",
        ];
        args.extend_from_slice(extra);
        let o = cryocube_with(&args, &env);
        assert!(o.status.success(), "{}", text(&o));
        o
    };
    build(
        &recipe,
        "s3://test/cubes/polar.zarr",
        &tmp.path().join("src-a"),
        &[],
    );
    let local = tmp.path().join("local.zarr");
    build(&recipe, p(&local), &tmp.path().join("src-b"), &[]);
    let from_files = tmp.path().join("from-files.zarr");
    build(
        &example_recipe(),
        p(&from_files),
        &tmp.path().join("src-c"),
        &[],
    );

    let on_s3 = g.store("cubes/polar.zarr");
    assert_same_stores(&LocalStore::new(&local), &on_s3);
    let data = chunks(&on_s3);
    assert!(data.len() > 100, "{} chunk keys", data.len());
    assert_eq!(data, chunks(&LocalStore::new(&from_files)));
    // The old journal, the plan and the temporary aside folder are gone; nothing was written elsewhere.
    let (all, _) = g.client().list("test", "", false).unwrap();
    assert!(all
        .iter()
        .all(|o| o.key.starts_with("sources/") || o.key.starts_with("cubes/polar.zarr/")));
    assert!(!on_s3.exists(".cryocube-journal.json").unwrap());
    assert!(!on_s3.exists(".cryocube/plan.json.gz").unwrap());

    let o = cryocube_with(&["info", "s3://test/cubes/polar.zarr"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let info = text(&o);
    assert!(
        info.contains("cube:    s3://test/cubes/polar.zarr"),
        "{info}"
    );
    assert!(info.contains("(EPSG:3031)"), "{info}");
    assert!(info.contains("372 x 404 cells of 5250 x 5250 m"), "{info}");
    assert!(
        info.contains("s3://test/sources/geotiff/ant4d_fa.tif"),
        "{info}"
    );

    // xarray reads the cube from S3 with its own client, equal to the local copy.
    let script = r#"
import sys, numpy as np, xarray as xr, rioxarray
endpoint, key, secret, local = sys.argv[1:5]
so = {"key": key, "secret": secret, "client_kwargs": {"endpoint_url": endpoint, "region_name": "garage"}}
a = xr.open_zarr("s3://test/cubes/polar.zarr", storage_options=so)
b = xr.open_zarr(local)
assert a.rio.crs.to_epsg() == 3031, a.rio.crs
assert sorted(a.data_vars) == sorted(b.data_vars)
for v in b.data_vars:
    np.testing.assert_array_equal(a[v].values, b[v].values)
print("xarray-ok", len(a.data_vars), int(np.isfinite(a["gravity_anomaly"].values).sum()))
"#;
    let o = std::process::Command::new(venv())
        .args([
            "-c",
            script,
            &g.endpoint,
            &g.access_key,
            &g.secret_key,
            p(&local),
        ])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let finite: usize = out
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(out.contains("xarray-ok 16"), "{out}");
    assert!(finite > 10_000, "{out}");

    // patch works in place on S3 and rewrites the consolidated metadata.
    let patch = tmp.path().join("patch.yaml");
    std::fs::write(
        &patch,
        "metadata:\n  .zattrs:\n    title: On S3\n  gravity_anomaly/.zattrs:\n    units: mGal (patched)\n",
    )
    .unwrap();
    let o = cryocube_with(
        &[
            "patch",
            "s3://test/cubes/polar.zarr",
            "--metadata",
            p(&patch),
        ],
        &env,
    );
    assert!(o.status.success(), "{}", text(&o));
    let zmeta: serde_json::Value =
        serde_json::from_slice(&on_s3.get(".zmetadata").unwrap().unwrap()).unwrap();
    assert_eq!(zmeta["metadata"][".zattrs"]["title"], "On S3");
    assert_eq!(
        zmeta["metadata"]["gravity_anomaly/.zattrs"]["units"],
        "mGal (patched)"
    );

    // An existing cube is kept unless --overwrite.
    let src_a = tmp.path().join("src-a");
    let args = [
        "build",
        p(&recipe),
        "-o",
        "s3://test/cubes/polar.zarr",
        "--sources",
        p(&src_a),
        "--res",
        "5250",
    ];
    let o = cryocube_with(&args, &env);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("s3://test/cubes/polar.zarr: output already exists"),
        "{}",
        text(&o)
    );
    let mut again = args.to_vec();
    again.extend(["--overwrite", "--pyramid"]);
    let o = cryocube_with(&again, &env);
    assert!(o.status.success(), "{}", text(&o));
    // --pyramid: the viewer's levels are stored on S3 inside the cube (the time-stacked
    // variables are 2 x 404 x 372: one level of 2 x 202 x 186, the two epochs never averaged).
    let manifest: serde_json::Value =
        serde_json::from_slice(&on_s3.get(".pyramid/pyramid.json").unwrap().unwrap()).unwrap();
    assert_eq!(
        manifest["levels"].as_array().unwrap().len(),
        1,
        "{manifest}"
    );
    assert_eq!(
        manifest["levels"][0]["shapes"]["thw_70"],
        serde_json::json!([2, 202, 186])
    );
    assert!(on_s3.exists(".pyramid/1/.zmetadata").unwrap());
    let zattrs: serde_json::Value =
        serde_json::from_slice(&on_s3.get(".zattrs").unwrap().unwrap()).unwrap();
    assert_ne!(zattrs["title"], "On S3", "the cube was not replaced");
    // Chunks of the old 128-cell layout are gone, not left beside the new 2048-cell ones.
    assert!(!on_s3.exists("gravity_anomaly/3.2").unwrap());
    assert!(on_s3.exists("gravity_anomaly/0.0").unwrap());
}

/// A build onto S3 killed midway resumes from the plan it keeps on S3, to the same bytes
/// as an uninterrupted local build.
#[test]
fn killed_build_on_s3_resumes() {
    let g = Garage::start();
    let env = g.env();
    let tmp = tempfile::tempdir().unwrap();
    let recipe = example_recipe();
    let sources = tmp.path().join("sources");
    let args = |out: &str| -> Vec<String> {
        [
            "build",
            p(&recipe),
            "-o",
            out,
            "--sources",
            p(&sources),
            "--res",
            "1000",
            "--chunk",
            "128",
            "-q",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let whole = tmp.path().join("whole.zarr");
    let whole_args = args(p(&whole));
    let o = cryocube(&whole_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o));

    let s3_args = args("s3://test/resumed.zarr");
    let argv: Vec<&str> = s3_args.iter().map(String::as_str).collect();
    let store = g.store("resumed.zarr");
    kill_after_blocks_in(&argv, &env, &store, 60);
    assert!(
        !store.exists(".zmetadata").unwrap(),
        "a killed build looks complete"
    );
    let o = cryocube_with(&["info", "s3://test/resumed.zarr"], &env);
    assert!(text(&o).contains("INCOMPLETE"), "{}", text(&o));

    let o = cryocube_with(&argv[..argv.len() - 1], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("resuming an interrupted build"),
        "{}",
        text(&o)
    );
    assert_same_stores(&LocalStore::new(&whole), &store);
}

/// `cryocube das -o s3://…` writes the same cube as to a folder.
#[test]
fn das_cube_on_s3() {
    let g = Garage::start();
    let tmp = tempfile::tempdir().unwrap();
    let input = das("synthetic");
    let local = tmp.path().join("das.zarr");
    let o = cryocube(&["das", p(&input), "-o", p(&local), "--chunks", "64,16"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = cryocube_with(
        &[
            "das",
            p(&input),
            "-o",
            "s3://test/das/cube.zarr",
            "--chunks",
            "64,16",
        ],
        &g.env(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("wrote s3://test/das/cube.zarr"),
        "{}",
        text(&o)
    );
    assert_same_stores(&LocalStore::new(&local), &g.store("das/cube.zarr"));

    // The viewer's pyramid, built on S3 (891 x 32 x 101 windows: levels of 446 and 223).
    let o = cryocube_with(&["pyramid", "s3://test/das/cube.zarr"], &g.env());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("pyramid of 2 level(s)"), "{}", text(&o));

    // `cryocube view` serves the cube from S3: the same values as the local copy.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cryocube"))
        .args(["view", "s3://test/das/cube.zarr", "--port", "0"])
        .envs(g.env())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    let get = |path: &str| -> serde_json::Value {
        serde_json::from_str(
            &ureq::get(&format!("{url}{path}"))
                .call()
                .unwrap()
                .into_string()
                .unwrap(),
        )
        .unwrap()
    };
    let meta = get("api/meta");
    assert_eq!(meta["store"], "s3://test/das/cube.zarr");
    assert_eq!(
        meta["levels"], 3,
        "the cube and the 2 levels of its pyramid on S3"
    );
    assert_eq!(meta["variables"][0]["name"], "spectrogram");
    let reader = cryocube_cube::CubeReader::open(&local).unwrap();
    for idx in [[0u64, 0, 0], [5, 7, 11], [20, 3, 50]] {
        let want = reader.read_f64("spectrogram", &idx, &[1, 1, 1]).unwrap()[0];
        let got = get(&format!(
            "api/value?var=spectrogram&i={}&j={}&k={}",
            idx[0], idx[1], idx[2]
        ));
        assert_eq!(got["value"].as_f64(), Some(want), "{idx:?}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// What goes wrong with S3 is said clearly, with the URL, and exits 1 without a cube.
#[test]
fn s3_errors_name_the_url_and_the_cause() {
    let g = Garage::start();
    let tmp = tempfile::tempdir().unwrap();
    let input = das("synthetic");
    let run = |out: &str, env: &[(String, String)]| {
        let o = cryocube_with(&["das", p(&input), "-o", out], env);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
        text(&o)
    };
    let with = |key: &str, value: &str| -> Vec<(String, String)> {
        let mut env = g.env();
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value.to_string()));
        env
    };

    let t = run(
        "s3://test/x.zarr",
        &with("AWS_SECRET_ACCESS_KEY", "0".repeat(64).as_str()),
    );
    assert!(t.contains("s3://test/x.zarr"), "{t}");
    assert!(t.contains("HTTP 403"), "{t}");
    assert!(t.contains("AWS_SECRET_ACCESS_KEY"), "{t}");

    let t = run("s3://no-such-bucket/x.zarr", &g.env());
    assert!(t.contains("no bucket `no-such-bucket`"), "{t}");

    let t = run("s3://test/x.zarr", &with("AWS_ENDPOINT_URL", "127.0.0.1:1"));
    assert!(t.contains("must start with http:// or https://"), "{t}");

    // A bucket without a prefix is a usage error (exit 2).
    let o = cryocube_with(&["das", p(&input), "-o", "s3://test"], &g.env());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("give the cube a prefix"), "{}", text(&o));

    // A prefix holding something else is not replaced by --overwrite.
    g.client().put("test", "notes/readme.txt", b"mine").unwrap();
    let o = cryocube_with(
        &["das", p(&input), "-o", "s3://test/notes", "--overwrite"],
        &g.env(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("not a Zarr store"), "{}", text(&o));
    assert_eq!(
        g.client()
            .get("test", "notes/readme.txt", None)
            .unwrap()
            .as_deref(),
        Some(&b"mine"[..])
    );

    // A missing S3 source names its URL.
    let recipe = tmp.path().join("cube.geojson");
    std::fs::write(
        &recipe,
        std::fs::read_to_string(example_recipe()).unwrap().replace(
            "file://${CRYOCUBE_SHARED}/data/polar/geotiff/ant4d_fa.tif",
            "s3://test/sources/missing.tif",
        ),
    )
    .unwrap();
    let o = cryocube_with(
        &["fetch", p(&recipe), "--dir", p(&tmp.path().join("src"))],
        &g.env(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("s3://test/sources/missing.tif: HTTP 404"), "{t}");
    assert!(
        !t.contains("X-Amz-Signature"),
        "a signature reached the message: {t}"
    );
    // Nothing was left behind by the failed runs.
    let (all, _) = g.client().list("test", "", false).unwrap();
    let keys: Vec<_> = all.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["notes/readme.txt"]);
}

/// Opening a cube reads its metadata keys and never pages through its prefix: `info` on a
/// cube of about 10 000 chunks makes a handful of requests, counted on the wire by a proxy in
/// front of the server; so does an `--append` that finds nothing new.
#[test]
fn opening_a_large_cube_on_s3_never_lists_it() {
    let g = Garage::start();
    let env = g.env();
    let input = das("synthetic");
    // 891 windows x 32 channels in chunks of 1 x 3: 891 x 11 = 9801 chunks.
    let o = cryocube_with(
        &[
            "das",
            p(&input),
            "-o",
            "s3://test/many.zarr",
            "--chunks",
            "1,3",
            "-q",
        ],
        &env,
    );
    assert!(o.status.success(), "{}", text(&o));
    let chunks = g
        .client()
        .list("test", "many.zarr/spectrogram/", false)
        .unwrap()
        .0
        .len();
    assert!(chunks >= 9_000, "{chunks} chunks");

    let proxy = common::CountingProxy::start(&g.endpoint);
    let mut via = env.clone();
    via.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    via.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint.clone()));
    let o = cryocube_with(&["info", "s3://test/many.zarr"], &via);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("time: 891"), "{}", text(&o));
    assert!(text(&o).contains("not summed"), "{}", text(&o));
    let seen = proxy.take();
    assert!(
        seen.len() <= 8 && !seen.iter().any(|r| r.contains("list-type")),
        "{} requests: {seen:#?}",
        seen.len()
    );

    // An append with nothing new: the lock (its own tickets' prefix), one bounded look at the
    // cube's prefix, the metadata, the coordinates.
    let o = cryocube_with(
        &["das", p(&input), "-o", "s3://test/many.zarr", "--append"],
        &via,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("nothing to append"), "{}", text(&o));
    let seen = proxy.take();
    let unbounded: Vec<&String> = seen
        .iter()
        .filter(|r| {
            r.contains("list-type") && !r.contains("max-keys") && !r.contains("cryocube-lock")
        })
        .collect();
    assert!(
        seen.len() <= 20 && unbounded.is_empty(),
        "{} requests: {seen:#?}",
        seen.len()
    );
}

/// An S3 server that starts answering 503 in the middle of a task: the requests are retried,
/// then the task stops with a clear error (the URL, the status), the block it was writing is
/// not recorded, nothing is published; with the server well again, the same task finishes
/// the job and the cube equals the one-process cube.
#[test]
fn a_task_meeting_503s_fails_clearly_and_records_nothing_it_did_not_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let g = Garage::start();
    let input = das("synthetic");
    let local = tmp.path().join("local.zarr");
    let o = cryocube(&["das", p(&input), "-o", p(&local), "--chunks", "64,8"]);
    assert!(o.status.success(), "{}", text(&o));
    let proxy = common::CountingProxy::start(&g.endpoint);
    let mut env = g.env();
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint.clone()));
    let url = "s3://test/flaky.zarr";
    let o = cryocube_with(
        &[
            "das",
            p(&input),
            "-o",
            url,
            "--chunks",
            "64,8",
            "--plan-only",
        ],
        &env,
    );
    assert!(o.status.success(), "{}", text(&o));
    // Let the task take its lock and write a few blocks (4 chunks + a record each), then fail.
    proxy.fail_puts_after(14);
    let o = cryocube_with(&["task", url, "--index", "0", "--count", "1"], &env);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("HTTP 503") && text(&o).contains("s3://test/flaky.zarr/"),
        "{}",
        text(&o)
    );
    let on_s3 = g.store("flaky.zarr");
    let recorded = on_s3.list(".cryocube/done/").unwrap().len();
    assert!(recorded < 14, "{recorded} blocks recorded");
    // Every recorded block has all its chunks.
    for (key, _) in on_s3.list(".cryocube/done/").unwrap() {
        let b: u64 = key.rsplit('/').next().unwrap().parse().unwrap();
        for d in 0..4 {
            assert!(
                on_s3.exists(&format!("spectrogram/{b}.{d}.0")).unwrap(),
                "{key}"
            );
        }
    }
    assert!(!on_s3.exists(".zmetadata").unwrap());
    proxy.fail_puts_after(usize::MAX);
    let o = cryocube_with(&["task", url, "--index", "0", "--count", "1"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let o = cryocube_with(&["commit", url], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert_same_stores(&LocalStore::new(&local), &on_s3);
}

/// Two writers started at once on one S3 prefix (the bakery lock on a server that ignores
/// conditional PUTs): never a corrupt cube. Two `das` runs: one writes, the other is refused
/// naming the holder (or finds the cube there); two `--append --wait` runs of the same files:
/// both succeed and the cube is the one of one run.
#[test]
fn two_writers_at_once_on_s3_never_corrupt_a_store() {
    let tmp = tempfile::tempdir().unwrap();
    let g = Garage::start();
    let env = g.env();
    let input = das("synthetic");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&input)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let local = tmp.path().join("local.zarr");
    let o = cryocube(&["das", p(&input), "-o", p(&local)]);
    assert!(o.status.success(), "{}", text(&o));
    let start = |args: Vec<&str>| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cryocube"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = start(vec!["das", p(&input), "-o", "s3://test/race.zarr"]);
    let b = start(vec!["das", p(&input), "-o", "s3://test/race.zarr"]);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let won = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert_eq!(won, 1, "{}\n---\n{}", text(&a), text(&b));
    let lost = if a.status.success() { &b } else { &a };
    assert!(
        text(lost).contains("another cryocube is writing this store")
            || text(lost).contains("output already exists"),
        "{}",
        text(lost)
    );
    assert_same_stores(&LocalStore::new(&local), &g.store("race.zarr"));
    assert!(g
        .store("race.zarr")
        .list(".cryocube-lock/")
        .unwrap()
        .is_empty());

    let o = cryocube_with(&["das", p(&files[0]), "-o", "s3://test/grown.zarr"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let args = vec![
        "das",
        p(&input),
        "-o",
        "s3://test/grown.zarr",
        "--append",
        "--wait",
    ];
    let (a, b) = (start(args.clone()), start(args));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    assert_same_stores(&LocalStore::new(&local), &g.store("grown.zarr"));
}

/// A body cut midway is asked for again (`info` still works, the object was read twice); a
/// cube whose chunks are above the multipart threshold goes up in parts and equals the local
/// cube; credentials, region and endpoint come from an AWS profile when the environment
/// has none.
#[test]
fn cut_bodies_are_retried_large_objects_go_in_parts_and_profiles_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    let g = Garage::start();
    let input = das("synthetic");
    // Chunks of 64 windows x 8 channels x 101 bins: about 200 KB raw, above 0.1 MB.
    let local = tmp.path().join("local.zarr");
    let args = |out: &str| -> Vec<String> {
        ["das", p(&input), "-o", out, "--chunks", "64,8"]
            .map(String::from)
            .to_vec()
    };
    let o = cryocube(
        &args(p(&local))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let proxy = common::CountingProxy::start(&g.endpoint);
    let mut env = g.env();
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint.clone()));
    env.push(("CRYOCUBE_S3_MULTIPART_MB".into(), "0.1".into()));
    let o = cryocube_with(
        &args("s3://test/parts.zarr")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &env,
    );
    assert!(o.status.success(), "{}", text(&o));
    let seen = proxy.take();
    // Each large chunk: an upload started, its part sent, the upload completed.
    let count = |method: &str, what: &str| {
        seen.iter()
            .filter(|r| r.starts_with(method) && r.contains(what))
            .count()
    };
    let (started, parts, completed) = (
        count("POST ", "uploads="),
        count("PUT ", "partNumber=1"),
        count("POST ", "uploadId="),
    );
    assert!(
        started >= 40 && parts == started && completed == started,
        "{started} started, {parts} parts, {completed} completed: {seen:#?}"
    );
    assert_same_stores(&LocalStore::new(&local), &g.store("parts.zarr"));

    proxy.cut_answers(1);
    let o = cryocube_with(&["info", "s3://test/parts.zarr"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let path = |r: &String| r.split('?').next().unwrap_or_default().to_string();
    let seen: Vec<String> = proxy.take().iter().map(path).collect();
    assert_eq!(
        seen.iter().filter(|r| **r == seen[0]).count(),
        2,
        "the cut answer is asked for again: {seen:#?}"
    );

    // An AWS profile instead of the environment's keys.
    let aws = tmp.path().join("aws");
    std::fs::create_dir(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        format!(
            "[default]\naws_access_key_id = GKwrong\naws_secret_access_key = wrong\n\n[garage]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            g.access_key, g.secret_key
        ),
    )
    .unwrap();
    std::fs::write(
        aws.join("config"),
        format!(
            "[default]\nregion = garage\nendpoint_url = {0}\n[profile garage]\nregion = garage\nendpoint_url = {0}\n",
            g.endpoint
        ),
    )
    .unwrap();
    let files = vec![
        (
            "AWS_SHARED_CREDENTIALS_FILE".to_string(),
            p(&aws.join("credentials")).to_string(),
        ),
        (
            "AWS_CONFIG_FILE".to_string(),
            p(&aws.join("config")).to_string(),
        ),
    ];
    let mut profile = files.clone();
    profile.push(("AWS_PROFILE".into(), "garage".into()));
    let o = cryocube_with(&["info", "s3://test/parts.zarr"], &profile);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("time: 891"), "{}", text(&o));
    // The default profile's keys are wrong: refused, naming what to check.
    let o = cryocube_with(&["info", "s3://test/parts.zarr"], &files);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("HTTP 403"), "{}", text(&o));
    let mut missing = files.clone();
    missing.push(("AWS_PROFILE".into(), "nosuch".into()));
    let o = cryocube_with(&["info", "s3://test/parts.zarr"], &missing);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no such profile"), "{}", text(&o));
}

//! A real scheduler: a one-node Slurm cluster (slurmctld + slurmd + munge, started here) runs
//! `cryocube slurm` jobs — an array of 4 tasks and the dependent commit — writing to a real S3
//! server (Garage, started here). The DAS cubes (the three synthetic Rhone-like files, and a
//! longer synthetic record with one array task cancelled and resubmitted) and the
//! polar stand-in build at 1 km equal the one-process cubes byte for byte, and xarray opens
//! them.

mod common;

use std::path::Path;

use common::{assert_same_stores, cryocube, cryocube_with, p, text, venv, Garage, Slurm};
use cryocube_cube::store::LocalStore;

fn synthetic() -> Vec<String> {
    common::synthetic_files()
        .iter()
        .map(|f| p(f).to_string())
        .collect()
}

/// `cryocube slurm --tasks 4 ... -- JOB`; returns the array and commit job ids.
fn submit(env: &[(String, String)], logs: &Path, job: &[String]) -> (String, String) {
    let mut args: Vec<String> = [
        "slurm",
        "--tasks",
        "4",
        "--cpus",
        "1",
        "--mem",
        "1G",
        "--log-dir",
        p(logs),
        "--",
    ]
    .map(String::from)
    .to_vec();
    args.extend(job.iter().cloned());
    let o = cryocube_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), env);
    assert!(o.status.success(), "{}", text(&o));
    let ids: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(ids.len(), 2, "{}", text(&o));
    (ids[0].clone(), ids[1].clone())
}

fn logs_of(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| {
                    format!(
                        "--- {}\n{}",
                        e.path().display(),
                        std::fs::read_to_string(e.path()).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// xarray (with s3fs) opens the cube on S3 and finds the same values as in the local one.
fn xarray_equal(g: &Garage, url: &str, local: &Path, var: &str) {
    let script = r#"
import sys, numpy as np, xarray as xr
endpoint, key, secret, url, local, var = sys.argv[1:7]
so = {"key": key, "secret": secret, "client_kwargs": {"endpoint_url": endpoint, "region_name": "garage"}}
a = xr.open_zarr(url, storage_options=so)
b = xr.open_zarr(local)
np.testing.assert_array_equal(a[var].values, b[var].values)
print("xarray-ok", a[var].shape)
"#;
    let o = std::process::Command::new(venv())
        .args([
            "-c",
            script,
            &g.endpoint,
            &g.access_key,
            &g.secret_key,
            url,
            p(local),
            var,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("xarray-ok"), "{}", text(&o));
}

#[test]
fn slurm_arrays_write_the_cube_of_one_process_to_s3() {
    let tmp = tempfile::tempdir().unwrap();
    let g = Garage::start();
    let slurm = Slurm::start();
    let mut env = g.env();
    env.extend(slurm.env());
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();

    // 1. The three synthetic files: 4 tasks, then the commit, onto S3.
    let files = synthetic();
    let local = tmp.path().join("das.zarr");
    let mut args = vec!["das".to_string()];
    args.extend(files.iter().cloned());
    args.extend(["--chunks", "64,8"].map(String::from));
    let mut one = args.clone();
    one.extend(["-o".to_string(), p(&local).to_string()]);
    let o = cryocube(&one.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o));
    let mut job = args.clone();
    job.extend(["-o", "s3://test/slurm/das.zarr"].map(String::from));
    let (array, commit) = submit(&env, &logs, &job);
    slurm.wait_gone(&[&array, &commit]);
    let on_s3 = g.store("slurm/das.zarr");
    assert!(
        cryocube_cube::store::Store::exists(&on_s3, ".zmetadata").unwrap(),
        "not committed:\n{}",
        logs_of(&logs)
    );
    assert_same_stores(&LocalStore::new(&local), &on_s3);
    xarray_equal(&g, "s3://test/slurm/das.zarr", &local, "spectrogram");

    // 2. A longer record; task 2 is cancelled before it starts, so the
    // commit never runs; task 2 alone is submitted again, then the commit.
    let long = tmp.path().join("long");
    let o = cryocube(&[
        "demo",
        "--record-only",
        "--files",
        "8",
        "--channels",
        "384",
        "-o",
        p(&long),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let raw = long.join("raw");
    let local = tmp.path().join("long.zarr");
    let o = cryocube(&["das", p(&raw), "-o", p(&local), "--chunks", "64,32"]);
    assert!(o.status.success(), "{}", text(&o));
    let job: Vec<String> = [
        "das",
        p(&raw),
        "-o",
        "s3://test/slurm/long.zarr",
        "--chunks",
        "64,32",
    ]
    .map(String::from)
    .to_vec();
    // The scripts `cryocube slurm` would submit (it plans the job here), submitted by hand
    // with the array held, so task 2 is cancelled before it starts on every machine: a
    // cancel aimed at a running task races with its end (it was lost on a fast CI run).
    let mut dry: Vec<String> = ["slurm", "--tasks", "4", "--dry-run", "--"]
        .map(String::from)
        .to_vec();
    dry.extend(job.iter().cloned());
    let dry_run = || -> String {
        let o = cryocube_with(&dry.iter().map(String::as_str).collect::<Vec<_>>(), &env);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let out = dry_run();
    let script = |out: &str, name: &str| -> String {
        let start = out.find(name).unwrap();
        let body = &out[start..];
        let body = &body[body.find("#!/bin/bash").unwrap()..];
        match body.find("# ---") {
            Some(end) => body[..end].to_string(),
            None => body.to_string(),
        }
    };
    let sbatch = |script: &str, extra: &[&str]| -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("sbatch")
            .args(["--parsable", "--output", &format!("{}/%j.out", p(&logs))])
            .args(extra)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let array = sbatch(&script(&out, "array job"), &["--hold"]);
    let commit = sbatch(
        &script(&out, "then the commit"),
        &[&format!("--dependency=afterok:{array}")],
    );
    let task2 = format!("{array}_2");
    let o = slurm.run("scancel", &[&task2]);
    assert!(o.status.success(), "{}", text(&o));
    let o = slurm.run("scontrol", &["release", &array]);
    assert!(o.status.success(), "{}", text(&o));
    slurm.wait_gone(&[&array]);
    // The commit waits for a dependency that can no longer be met.
    let state = slurm.state(&commit);
    assert_eq!(
        state, "PENDING",
        "the commit must not run after a cancelled task"
    );
    let on_s3 = g.store("slurm/long.zarr");
    assert!(!cryocube_cube::store::Store::exists(&on_s3, ".zmetadata").unwrap());
    let o = cryocube_with(&["commit", "s3://test/slurm/long.zarr"], &env);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("owned by task(s) 2 of 4"), "{}", text(&o));
    slurm.run("scancel", &[&commit]);
    // The array script again (the plan is there already: planning again changes nothing),
    // for task 2 only, then the commit after it.
    let out = dry_run();
    assert!(out.contains("already planned"), "{out}");
    let again = sbatch(&script(&out, "array job"), &["--array=2"]);
    let commit = sbatch(
        &script(&out, "then the commit"),
        &[&format!("--dependency=afterok:{again}")],
    );
    slurm.wait_gone(&[&again, &commit]);
    assert!(
        cryocube_cube::store::Store::exists(&on_s3, ".zmetadata").unwrap(),
        "not committed:\n{}",
        logs_of(&logs)
    );
    assert_same_stores(&LocalStore::new(&local), &on_s3);
    xarray_equal(&g, "s3://test/slurm/long.zarr", &local, "spectrogram");

    // 3. The polar stand-in example at 1 km.
    let recipe =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/polar-standin/cube.geojson");
    let sources = tmp.path().join("sources");
    let local = tmp.path().join("polar.zarr");
    let common_args = |out: &str| -> Vec<String> {
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
            "512",
        ]
        .map(String::from)
        .to_vec()
    };
    let one = common_args(p(&local));
    let o = cryocube(&one.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o));
    let (array, commit) = submit(&env, &logs, &common_args("s3://test/slurm/polar.zarr"));
    slurm.wait_gone(&[&array, &commit]);
    let on_s3 = g.store("slurm/polar.zarr");
    assert!(
        cryocube_cube::store::Store::exists(&on_s3, ".zmetadata").unwrap(),
        "not committed:\n{}",
        logs_of(&logs)
    );
    assert_same_stores(&LocalStore::new(&local), &on_s3);
    xarray_equal(&g, "s3://test/slurm/polar.zarr", &local, "gravity_anomaly");
}

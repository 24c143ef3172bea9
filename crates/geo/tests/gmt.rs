//! Old GMT netCDF grids decoded north-up with the right registration: the decoding of
//! `BEDMAP1_bed_5km_cf.nc` (pixel registration) equals `BEDMAP_elevation.nc`, the same grid
//! written by GMT as a CF netCDF with coordinate variables (read here independently); the
//! gridline-registered EMAG2 and the non-integer-spacing edge case get their nodes where the
//! MANIFEST says.

mod common;

use std::path::PathBuf;

use cryocube_geo::read::gmt;

fn gmt_dir() -> PathBuf {
    common::shared("data/polar/gmt_netcdf")
}

#[test]
fn bedmap1_old_gmt_equals_the_cf_copy() {
    let dir = gmt_dir();
    let old = dir.join("BEDMAP1_bed_5km_cf.nc");
    assert!(gmt::is_gmt_grid(&old));
    let r = gmt::read(&old).unwrap();
    assert_eq!((r.nx, r.ny), (1333, 1333));

    // The CF copy: x(x), y(y) ascending cell centres, z(y, x) int16 with _FillValue.
    let cf = netcdf::open(dir.join("BEDMAP_elevation.nc")).unwrap();
    assert!(!gmt::is_gmt_grid(&dir.join("BEDMAP_elevation.nc")));
    let x: Vec<f64> = cf.variable("x").unwrap().get_values(..).unwrap();
    let y: Vec<f64> = cf.variable("y").unwrap().get_values(..).unwrap();
    let z: Vec<i16> = cf.variable("z").unwrap().get_values(..).unwrap();
    assert!(y[1] > y[0], "the CF copy is south-up");
    let n = 1333;
    for (i, xi) in x.iter().enumerate() {
        assert!((r.x(i) - xi).abs() < 1e-6, "x[{i}]: {} vs {xi}", r.x(i));
    }
    let mut compared = 0;
    for j in 0..n {
        let cf_row = n - 1 - j; // north-up row j is the CF file's row n-1-j
        assert!(
            (r.y(j) - y[cf_row]).abs() < 1e-6,
            "y[{j}]: {} vs {}",
            r.y(j),
            y[cf_row]
        );
        for i in 0..n {
            let want = z[cf_row * n + i];
            let got = r.value(j, i);
            if want == -32768 {
                assert!(
                    got.is_nan(),
                    "({j},{i}): {got} where the CF copy has no data"
                );
            } else {
                assert_eq!(got, want as f32, "({j},{i})");
                compared += 1;
            }
        }
    }
    assert!(compared > 500_000, "only {compared} values compared");
}

#[test]
fn gridline_grids_put_nodes_on_the_range_ends() {
    let dir = gmt_dir();
    let r = gmt::read(&dir.join("EMAG2_V2_1x1.grd")).unwrap();
    assert_eq!((r.nx, r.ny), (361, 181));
    assert_eq!((r.x(0), r.x(360)), (-180.0, 180.0));
    assert_eq!((r.y(0), r.y(180)), (90.0, -90.0));
    // The sentinel is data to the decoder; the recipe's `valid: {gt: -90000}` removes it.
    assert!(r.values.iter().any(|v| *v < -90000.0));

    let t = gmt::read(&dir.join("xz-temp.nc")).unwrap();
    assert_eq!((t.nx, t.ny), (10, 18));
    assert_eq!((t.x(0), t.x(9)), (-181.0, -46.0));
    assert!((t.y(0) - 21.02).abs() < 1e-9 && (t.y(17) - 3.0).abs() < 1e-9);
    // First stored value (ncdump: 1219.159) is the north-west node.
    assert!((t.value(0, 0) - 1219.159).abs() < 1e-3);
}

#[test]
fn a_file_that_is_not_an_old_gmt_grid_is_named() {
    let dir = gmt_dir();
    let e = gmt::read(&dir.join("BEDMAP_elevation.nc")).unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("BEDMAP_elevation.nc") && m.contains("not an old GMT grid"),
        "{m}"
    );
}

mod hostile {
    //! Old GMT grids with any header values (ranges, spacing, dimension, registration,
    //! packing) and a `z` of any length: a raster or an error naming the file, never a
    //! panic, and no allocation sized by what the header claims rather than what `z` holds.
    use proptest::prelude::*;

    use cryocube_geo::read::gmt;

    fn number() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => -1000.0f64..1000.0,
            2 => (0u32..50).prop_map(f64::from),
            1 => Just(0.0),
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(1e300),
            1 => Just(-1e19),
        ]
    }

    #[derive(Debug, Clone)]
    struct Header {
        x_range: [f64; 2],
        y_range: [f64; 2],
        spacing: [f64; 2],
        dimension: [f64; 2],
        node_offset: Option<i32>,
        scale: Option<f64>,
        z_len: usize,
    }

    fn header() -> impl Strategy<Value = Header> {
        (
            [number(), number()],
            [number(), number()],
            [number(), number()],
            [number(), number()],
            prop::option::of(prop_oneof![Just(0), Just(1), any::<i32>()]),
            prop::option::of(number()),
            0usize..600,
        )
            .prop_map(
                |(x_range, y_range, spacing, dimension, node_offset, scale, z_len)| Header {
                    x_range,
                    y_range,
                    spacing,
                    dimension,
                    node_offset,
                    scale,
                    z_len,
                },
            )
    }

    fn write(path: &std::path::Path, h: &Header) {
        let mut f = netcdf::create(path).unwrap();
        f.add_dimension("side", 2).unwrap();
        f.add_dimension("xysize", h.z_len).unwrap();
        for (name, v) in [
            ("x_range", h.x_range),
            ("y_range", h.y_range),
            ("spacing", h.spacing),
            ("dimension", h.dimension),
        ] {
            let mut var = f.add_variable::<f64>(name, &["side"]).unwrap();
            var.put_values(&v, ..).unwrap();
        }
        let mut z = f.add_variable::<f32>("z", &["xysize"]).unwrap();
        if let Some(o) = h.node_offset {
            z.put_attribute("node_offset", o).unwrap();
        }
        if let Some(s) = h.scale {
            z.put_attribute("scale_factor", s).unwrap();
        }
        let values: Vec<f32> = (0..h.z_len).map(|i| i as f32).collect();
        if !values.is_empty() {
            z.put_values(&values, ..).unwrap();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn old_gmt_grids_of_any_header(h in header()) {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join("hostile.grd");
            write(&path, &h);
            match gmt::read(&path) {
                Ok(r) => {
                    // Only what `z` holds was decoded, on a grid the header describes.
                    prop_assert_eq!(r.values.len(), h.z_len);
                    prop_assert_eq!(r.nx * r.ny, h.z_len);
                    prop_assert!(r.dx > 0.0 && r.dy > 0.0 && r.x0.is_finite() && r.y0.is_finite());
                }
                Err(e) => prop_assert!(e.to_string().contains("hostile.grd"), "{}", e),
            }
        }
    }
}

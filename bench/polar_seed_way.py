"""The seed workflow's way of building the polar cube, for the benchmark (bench/polar.sh).

The approach of deepesdl/cube-gen Polar/ as ../shared/data/polar/reference/make_ref.py
reproduces it (xarray + rioxarray, everything in memory): load each source whole, reproject a
lon/lat source with rioxarray's defaults, `.interp` every source onto the cell centres, merge,
write the CRS, `to_zarr`. Here over any bbox and resolution (the benchmark uses the seed's
bbox), with the same seven layers cryocube builds in the comparison: free-air gravity
(ant4d_fa.tif, -32767 undeclared), BEDMAP1 (old GMT, pixel), EMAG2 (old GMT lon/lat,
gridline, z > -90000, south of 60 S) and the four Thwaites masks (nearest, > 0 kept).

    python polar_seed_way.py --data ../shared/data/polar --res 1000 --out cube.zarr
"""
import argparse
import json
import os

import numpy as np
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr

SEED_BBOX = [-2602500.0, -1626000.0, -649500.0, 495000.0]


def read_gmt_cf(path):
    """Old GMT grid, decoded as make_ref.py does (first stored row north), y ascending."""
    ds = xr.open_dataset(path)
    nx, ny = (int(v) for v in ds["dimension"].values)
    dx, dy = (float(v) for v in ds["spacing"].values)
    x0 = float(ds["x_range"].values[0])
    y1 = float(ds["y_range"].values[1])
    off = 0.5 if int(ds["z"].attrs.get("node_offset", 0)) == 1 else 0.0
    x = x0 + (np.arange(nx) + off) * dx
    y = y1 - (np.arange(ny) + off) * dy
    z = ds["z"].values.reshape(ny, nx)
    return xr.DataArray(z, dims=("y", "x"), coords={"y": y, "x": x}).sortby("y")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--res", type=float, default=1000.0)
    ap.add_argument("--bbox", default=json.dumps(SEED_BBOX))
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    bbox, res = json.loads(a.bbox), a.res
    x = np.arange(bbox[0], bbox[2], res) + res / 2
    y = np.arange(bbox[1], bbox[3], res) + res / 2
    at = dict(x=x, y=y)

    fa = rioxarray.open_rasterio(os.path.join(a.data, "geotiff", "ant4d_fa.tif"))
    fa = fa.isel(band=0).drop_vars(["band", "spatial_ref"])
    fa.attrs = {}
    fa = fa.where(fa != -32767.0).rename("gravity_anomaly")

    bed = read_gmt_cf(os.path.join(a.data, "gmt_netcdf", "BEDMAP1_bed_5km_cf.nc"))
    bed = bed.rename("bed_elevation_bedmap1")

    mag = read_gmt_cf(os.path.join(a.data, "gmt_netcdf", "EMAG2_V2_1x1.grd"))
    mag = mag.rename(x="lon", y="lat").where(lambda v: v > -90000.0)
    mag = mag.sel(lat=slice(-90, -60)).to_dataset(name="magnetic_anomaly")
    mag = mag.rio.write_crs(4326).rename(dict(lon="x", lat="y"))
    mag = mag.rio.reproject("EPSG:3031", nodata=np.nan).drop_vars("spatial_ref")

    lakes = []
    for n in (70, 124, 142, 170):
        m = rioxarray.open_rasterio(os.path.join(a.data, "masks", f"Thw{n}_SF2018_mask.tif"))
        m = m.isel(band=0).drop_vars(["band", "spatial_ref"])
        m.attrs = {}
        lakes.append(m.where(lambda v: v > 0, other=np.nan).rename(f"thw_{n}"))
    lakes = xr.merge(lakes)

    ds = xr.merge([
        fa.interp(at, method="linear"),
        bed.interp(at, method="linear"),
        mag.interp(at, method="linear"),
        lakes.interp(at, method="nearest"),
    ])
    ds = ds.rio.write_crs("epsg:3031", grid_mapping_name="crs").reset_coords()
    for v in [v for v in ds.data_vars if v != "crs"]:
        ds[v] = ds[v].astype("float32")
    ds.chunk(dict(x=2048, y=2048)).to_zarr(a.out, mode="w", zarr_format=2, consolidated=True)


if __name__ == "__main__":
    main()

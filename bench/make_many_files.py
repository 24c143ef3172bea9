"""Writes N DAS files in the Silixa iDAS HDF5 layout (`/Acoustic`, string attributes), 30 s
at 1 kHz each, one after the other, with one gap and one overlap among them: the input of the
planning benchmark (`bench/scale.sh`) and of bench/python.sh. By default they are narrow (3
float32 channels); `--channels 2299 --dtype int16` makes Rhonegletscher-size files (138 MB
each). Samples are real (a 25 Hz tone plus noise); the attributes are those of an iDAS export
that DASCore's reader checks for too (bench/python.sh compares with it)."""
import argparse
import datetime as dt
import os

import h5py
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--out", required=True)
ap.add_argument("--files", type=int, default=20000)
ap.add_argument("--channels", type=int, default=3)
ap.add_argument("--dtype", choices=["float32", "int16"], default="float32")
ap.add_argument("--prefix", default="MANY")
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
fs, seconds = 1000, 30
n = fs * seconds
t0 = dt.datetime(2020, 7, 1, tzinfo=dt.timezone.utc)
rng = np.random.default_rng(1)
tone = np.sin(2 * np.pi * 25 * np.arange(n) / fs).astype(np.float32)
if a.dtype == "int16":
    # Counts, as an interrogator writes them; one block of noise, shifted in time from file
    # to file, keeps writing wide files at disk speed.
    noise = rng.integers(-300, 301, size=(n, a.channels), dtype=np.int16)
    counts = np.round(1000 * tone).astype(np.int16)
offset = 0.0
for i in range(a.files):
    if i == a.files // 2:
        offset += 60.0  # a gap of one minute
    if i == 3 * a.files // 4:
        offset -= 2.0  # an overlap of two seconds
    start = t0 + dt.timedelta(seconds=i * seconds + offset)
    if a.dtype == "int16":
        data = np.roll(noise, 37 * i, axis=0)
        data += counts[:, None]
    else:
        data = tone[:, None] + 0.1 * rng.standard_normal((n, a.channels), dtype=np.float32)
    local = start + dt.timedelta(hours=2)
    path = os.path.join(a.out, f"{a.prefix}_UTC_{start:%Y%m%d_%H%M%S.%f}"[:-3] + ".h5")
    with h5py.File(path, "w") as f:
        d = f.create_dataset("Acoustic", data=data)
        for k, v in {
            "SamplingFrequency[Hz]": str(fs),
            "SpatialResolution[m]": "4",
            "Fibre Length Multiplier": "1.000000",
            "Start Distance (m)": "0",
            "Stop Distance (m)": str(4 * (a.channels - 1)),
            "ISO8601 Timestamp": local.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+02:00",
            "GPSTimeStamp": start.strftime("%d/%m/%Y %H:%M:%S.%f")[:-3] + " (UTC)",
            "Acoustic Output": "Differential",
            # The rest of an iDAS export's attributes, which DASCore's reader requires.
            "CPUTimeStamp": start.strftime("%d/%m/%Y %H:%M:%S.%f")[:-3] + " (UTC)",
            "GaugeLength": "10",
            "Fibre Length per Metre": "1.000000",
            "Tags": "",
            "PulseWidth[ns]": "20",
            "MeasureLength[m]": "0",
            "StartPosition[m]": "0",
            "SystemInfomation.Devices1.SerialNum": "SYNTHETIC",
        }.items():
            d.attrs[k] = v
print(a.files, "files in", a.out)

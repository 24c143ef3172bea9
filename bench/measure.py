"""Shared by the benchmark scripts: wall time and peak memory of a command, run alone."""
import subprocess
import sys
import time


def run(cmd, env=None, quiet=False):
    """Wall time [s] and peak total RSS [bytes] of a process tree (sampled every 20 ms);
    `quiet`: its standard output is dropped."""
    import psutil

    subprocess.run(["sync"], check=True)
    t0 = time.perf_counter()
    p = psutil.Popen(cmd, env=env, stdout=subprocess.DEVNULL if quiet else None)
    peak = 0
    while p.poll() is None:
        rss = 0
        try:
            for q in [p] + p.children(recursive=True):
                try:
                    rss += q.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, rss)
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed with exit code {p.returncode}: {' '.join(cmd)}")
    return wall, peak

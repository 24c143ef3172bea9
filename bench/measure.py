"""Shared by the benchmark scripts: wall time and peak memory of a command, run alone."""
import os
import subprocess
import sys
import threading
import time


def run(cmd, env=None, quiet=False):
    """Wall time [s] and peak RSS [bytes] of a command; `quiet`: its standard output is dropped.

    The end is taken when the process is reaped (a thread waits for it), not at the next
    memory sample: sampling every 20 ms had added up to 20 ms plus psutil's own time to every
    run, a tenth of a 0.2 s one. The peak is the larger of the process tree's total RSS
    (sampled every 20 ms, for tools that run several processes at once) and the kernel's
    exact peak of the process and the children it waited for (wait4's ru_maxrss), which a
    short spike between samples cannot escape."""
    import psutil

    subprocess.run(["sync"], check=True)
    t0 = time.perf_counter()
    p = psutil.Popen(cmd, env=env, stdout=subprocess.DEVNULL if quiet else None)
    ended = {}

    def wait():
        _, status, usage = os.wait4(p.pid, 0)
        ended["at"] = time.perf_counter()
        ended["code"] = os.waitstatus_to_exitcode(status)
        ended["maxrss"] = usage.ru_maxrss * 1024

    waiter = threading.Thread(target=wait)
    waiter.start()
    peak = 0
    while waiter.is_alive():
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
        waiter.join(0.02)
    wall = ended["at"] - t0
    if ended["code"] != 0:
        sys.exit(f"{cmd[0]} failed with exit code {ended['code']}: {' '.join(cmd)}")
    return wall, max(peak, ended["maxrss"])

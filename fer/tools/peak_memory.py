"""Run a command and write its wall time and peak resident memory as JSON: python -m fer.tools.peak_memory OUT CMD...

A separate, small process on purpose: Linux carries a process's peak resident size across fork and exec, so a
command started straight from a process that once held a lot of memory (a benchmark that wrote its data) would
report that process's peak. Started from this one, the command's peak is its own (or this launcher's ~10 MB).
"""

import json
import os
import subprocess
import sys
import time


def main() -> int:
    out, command = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    with open(out, "w") as file:
        json.dump({"seconds": seconds, "peak_bytes": usage.ru_maxrss * 1024}, file)  # Linux reports kilobytes
    return process.returncode


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# `dvc repro` with the wall time of every stage it runs and of the whole run, as a markdown table: each stage's
# time runs from its "Running stage" line to the next one (or the end), so dvc's own work between stages is
# billed to the stage before it. Usage: scripts/timed_repro.sh [dvc repro args...]  (from the repository root,
# with the venv's dvc on PATH or .venv/ present). The machine's load average is printed before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
dvc=$(command -v dvc || echo .venv/bin/dvc)
export PATH="$(dirname "$dvc"):$PATH"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s.%N)
"$dvc" repro "$@" 2>&1 | while IFS= read -r line; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done \
  | tee /dev/stderr | awk -v start="$start" '
      /Running stage / { if (stage != "") times[stage] = $1 - since; match($0, /Running stage .[^'"'"']*/);
                         stage = substr($0, RSTART + 15, RLENGTH - 15); order[++n] = stage; since = $1 }
      { last = $1 }
      END { if (stage != "") times[stage] = last - since
            print "| stage | wall s |"; print "|---|---:|"
            for (i = 1; i <= n; i++) printf "| %s | %.1f |\n", order[i], times[order[i]]
            printf "| **dvc repro** | **%.1f** |\n", last - start }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

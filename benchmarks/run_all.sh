#!/usr/bin/env bash
# Run every jobtree benchmark with its defaults (full size), or scaled down with --quick.
#
#   bash benchmarks/run_all.sh [--quick] [--strict] [--dir PARENT]
#
# All scratch trees go into ONE directory that is deleted only after the last benchmark: a large
# deletion makes file creation on this disk 20-50x slower for minutes (shared FACTS), so no
# benchmark may run right after another one deleted its tree.
# Exit status: 0, unless --strict is given and some target was missed.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-python3}"
quick=0; strict=(); parent=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --strict) strict=(--strict) ;;
    --dir) parent="$2"; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$parent" ]; then
  if [ -d /var/tmp ] && [ -w /var/tmp ]; then parent=/var/tmp; else parent="$PWD"; fi
fi
base="$(mktemp -d "$parent/jobtree-bench-all.XXXXXX")"
echo "run_all: scratch parent $base (deleted at the end)"

if [ "$quick" = 1 ]; then
  drain=(--jobs 500 --rounds 3); submit=(--roots 10 --per-root 200 --rounds 2)
  history=(--jobs 5000 --per-root 500 --calls 500 --blocks 4)
  worker=(--idle-seconds 5 --samples 15); demo=(--rounds 1)
else
  drain=(); submit=(); history=(); worker=(); demo=()
fi

status=0
run() {
  echo; echo "+ $*"
  "$py" "$@" --dir "$base" --keep "${strict[@]}" || status=1
}
run "$here/bench_drain.py" "${drain[@]}"
run "$here/bench_submit.py" "${submit[@]}"
run "$here/bench_history.py" "${history[@]}"
run "$here/bench_worker.py" "${worker[@]}"
run "$here/bench_demo.py" "${demo[@]}"

echo
echo "run_all: removing $base"
rm -rf "$base"
echo "run_all: done (file creation on this disk may be slow for a few minutes after this deletion)"
exit $status

#!/usr/bin/env bash
# Times `tetra-triage batch` against `unzip -p | grep -E` over the same
# generated bundles, and measures its peak memory for 4 and for all bundles.
#
# Usage: benches/batch.sh [BUNDLES [LOG_MIB [RUNS]]]
#   BUNDLES  bundles to generate (default 16)
#   LOG_MIB  uncompressed log per bundle, in MiB (default 24)
#   RUNS     rounds of timed runs; each command's fastest run counts
#            (default 5)
#
# The bundles are written to a temporary directory under /tmp and removed
# at the end. Needs python3, unzip (apt-get install unzip) and GNU time as
# /usr/bin/time (apt-get install time).
set -euo pipefail
cd "$(dirname "$0")/.."

bundles=${1:-16}
log_mib=${2:-24}
runs=${3:-5}
# What an engineer would grep a bundle's logs for.
patterns='curl error|Could not resolve host|CRYPT_E_|0x8009|WinHttp|407 Proxy|Proxy Authentication|TETRA definition'

for tool in python3 unzip; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool not found; install it with: apt-get install $tool" >&2
        exit 2
    fi
done
if [ ! -x /usr/bin/time ]; then
    echo "error: /usr/bin/time not found; install it with: apt-get install time" >&2
    exit 2
fi

echo "Building the release binary..." >&2
cargo build --release --quiet
binary="${CARGO_TARGET_DIR:-target}/release/tetra-triage"

work=$(mktemp -d /tmp/tetra-triage-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "Writing $bundles bundles of $log_mib MiB of log to $work..." >&2
python3 benches/make_bench_bundles.py "$work/all" --bundles "$bundles" --log-mb "$log_mib" \
    >"$work/expected.tsv"
mkdir "$work/four"
find "$work/all" -name '*.zip' | sort | head -4 | while read -r file; do
    ln "$file" "$work/four/"
done

log_bytes=$(python3 - "$work/all" <<'EOF'
import pathlib, sys, zipfile
total = 0
for path in pathlib.Path(sys.argv[1]).glob("*.zip"):
    with zipfile.ZipFile(path) as archive:
        total += sum(info.file_size for info in archive.infolist() if "sfc.exe.log" in info.filename)
print(total)
EOF
)
zip_bytes=$(du -cb "$work"/all/*.zip | tail -1 | cut -f1)

# Every bundle must get the root cause it was built to show.
"$binary" batch --format jsonl "$work/all" 2>/dev/null >"$work/batch.jsonl"
python3 - "$work/expected.tsv" "$work/batch.jsonl" <<'EOF'
import json, pathlib, sys
expected = dict(line.split("\t") for line in pathlib.Path(sys.argv[1]).read_text().splitlines())
for line in pathlib.Path(sys.argv[2]).read_text().splitlines():
    report = json.loads(line)
    name = pathlib.Path(report["bundle"]).name
    if report.get("root_cause") != expected[name]:
        sys.exit(f"error: {name}: root cause {report.get('root_cause')!r}, expected {expected[name]!r}")
print(f"Root causes checked for {len(expected)} bundles.", file=sys.stderr)
EOF

# time_once NAME COMMAND...: runs COMMAND once with stdout discarded and
# keeps, per NAME, the fastest wall time with its user + system time, and
# the largest peak RSS in KiB.
declare -A best_wall best_cpu max_rss
time_once() {
    local name=$1
    shift
    /usr/bin/time -f "%e %U %S %M" -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt"
    local wall user sys rss
    read -r wall user sys rss <<<"$(tail -1 "$work/time.txt")"
    if [ -z "${best_wall[$name]:-}" ] || awk -v a="$wall" -v b="${best_wall[$name]}" 'BEGIN { exit !(a < b) }'; then
        best_wall[$name]=$wall
        best_cpu[$name]=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    fi
    if [ "$rss" -gt "${max_rss[$name]:-0}" ]; then
        max_rss[$name]=$rss
    fi
}

grep_all() {
    cd "$1"
    for file in *.zip; do
        # grep exits with 1 when a file has no match, which is not an error.
        unzip -p "$file" | grep -E "$2" || true
    done
}
export -f grep_all

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "Timing ($runs rounds)..." >&2
# The commands take turns, so a burst of load from other processes slows
# one round of each rather than every run of one.
for _ in $(seq "$runs"); do
    time_once batch "$binary" batch --format jsonl "$work/all"
    time_once jobs1 "$binary" batch --format jsonl --jobs 1 "$work/all"
    time_once jobs2 "$binary" batch --format jsonl --jobs 2 "$work/all"
    time_once grep bash -c 'grep_all "$1" "$2"' _ "$work/all" "$patterns"
    time_once four "$binary" batch --format jsonl "$work/four"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

report() {
    awk -v ratio_target=0.5 -v rss_target_kib=$((256 * 1024)) -v growth_target=1.5 \
        -v bundles="$bundles" -v log_bytes="$log_bytes" -v zip_bytes="$zip_bytes" \
        -v batch_wall="${best_wall[batch]}" -v batch_cpu="${best_cpu[batch]}" \
        -v batch_rss="${max_rss[batch]}" \
        -v jobs1_wall="${best_wall[jobs1]}" -v jobs1_cpu="${best_cpu[jobs1]}" \
        -v jobs2_wall="${best_wall[jobs2]}" -v jobs2_cpu="${best_cpu[jobs2]}" \
        -v grep_wall="${best_wall[grep]}" -v grep_cpu="${best_cpu[grep]}" \
        -v four_rss="${max_rss[four]}" '
    function verdict(ok) { return ok ? "met" : "missed" }
    BEGIN {
        ratio = batch_wall / grep_wall
        growth = batch_rss / four_rss
        printf "Bundles: %d ZIP files, %.1f MiB of log (%.1f MiB compressed)\n", bundles, log_bytes / 1048576, zip_bytes / 1048576
        printf "%-28s %8s %12s\n", "command", "wall s", "user+sys s"
        printf "%-28s %8.2f %12.2f\n", "batch (one job per core)", batch_wall, batch_cpu
        printf "%-28s %8.2f %12.2f\n", "batch --jobs 1", jobs1_wall, jobs1_cpu
        printf "%-28s %8.2f %12.2f\n", "batch --jobs 2", jobs2_wall, jobs2_cpu
        printf "%-28s %8.2f %12.2f\n", "unzip -p | grep -E", grep_wall, grep_cpu
        printf "Time ratio batch / unzip-grep: %.2f (target <= %.1f: %s)\n", ratio, ratio_target, verdict(ratio <= ratio_target)
        printf "Throughput: %.0f MB/s of uncompressed log (MB = 10^6 bytes)\n", log_bytes / batch_wall / 1e6
        printf "Speed-up from --jobs 1 to --jobs 2: %.2fx\n", jobs1_wall / jobs2_wall
        printf "Peak RSS: %.1f MiB for 4 bundles, %.1f MiB for %d bundles (%.2fx)\n", four_rss / 1024, batch_rss / 1024, bundles, growth
        printf "  target < 256 MiB: %s; target <= %.1fx the 4-bundle figure: %s\n", verdict(batch_rss < rss_target_kib), growth_target, verdict(growth <= growth_target)
    }'
}

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "Load average (1, 5, 15 min): $load_before before, $load_after after"
report

#!/usr/bin/env bash
# The GPU check: one prepared script for any CUDA machine with PyTorch and/or JAX (TensorFlow too, when
# it sees a GPU). Three phases, each under its own time limit, so a slow or hung phase cannot cost the
# others their results:
#   1. conformance  the default conformance run on --device=cuda, every framework that sees a GPU
#   2. bench        the fused bindings (F.cross_entropy, optax integer labels, the TensorFlow sparse op)
#                   at 4096x32000 and 4096x128256, float32 and bfloat16 (where declared), eager and
#                   compiled, forward and forward+backward; the floor is measured on the GPU
#   2b. linear-ce   every fused linear + cross-entropy binding the torch adapter declares there, at N = 8192,
#                   D = 4096, V = 128256 and 256000 in bfloat16, forward and forward+backward: time against
#                   6 N D V FLOPs at the measured matmul rate, peak memory (CUDA allocator) against the floor
#   3. report       one report merging the GPU results with any CPU results files given
#
#   scripts/gpu-check.sh [OUT_DIR] [CPU_RESULTS.json ...]      (default OUT_DIR: results/gpu)
#
# Environment: PYTHON (default python3); XENTCHECK_GPU_CONFORMANCE_S, XENTCHECK_GPU_BENCH_S (phase limits,
# default 300 and 240 s), XENTCHECK_GPU_LINEAR_S (the linear-ce phase, default 180 s). Packages the machine lacks travel as wheels in .whl/ (scripts/gpu-wheels.sh
# fetches them): they are installed into a temporary folder first. Exit status: 1 when no GPU is found
# (one line, nothing run), else non-zero when any phase failed or ran out of time.
set -uo pipefail
case "${1:-}" in -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
cd "$(dirname "$0")/.."
OUT=${1:-results/gpu}
[ $# -gt 0 ] && shift
PY=${PYTHON:-python3}
CONFORMANCE_S=${XENTCHECK_GPU_CONFORMANCE_S:-300}
BENCH_S=${XENTCHECK_GPU_BENCH_S:-240}
mkdir -p "$OUT" || { echo "gpu-check: cannot create $OUT; pass a writable folder" >&2; exit 2; }

# only where a dependency is missing: the wheels are built for the GPU machine's Python
if ! "$PY" -c 'import jsonschema, liger_kernel, cut_cross_entropy' 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
    site=$(mktemp -d /tmp/xentcheck-site.XXXX)
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl \
        || { echo "gpu-check: installing the wheels in .whl/ failed (see pip's message above)" >&2; exit 2; }
    export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
fi

if ! "$PY" -c 'import jsonschema, hypothesis, pytest_benchmark, pytest_timeout' 2>/dev/null; then
    echo "gpu-check: the harness's dependencies are missing here (jsonschema, hypothesis, pytest-benchmark," \
         "pytest-timeout): run scripts/gpu-wheels.sh on a machine with a registry and bring .whl/ along" >&2
    exit 2
fi

# Each framework is probed in its own process: one that fails to import must not hide the others.
fws=()
"$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null && fws+=(torch)
"$PY" -c 'import sys, jax, optax; sys.exit(not any(d.platform == "gpu" for d in jax.devices()))' 2>/dev/null && fws+=(jax)
"$PY" -c 'import sys, tensorflow as tf; sys.exit(not tf.config.list_physical_devices("GPU"))' 2>/dev/null \
    && fws+=(tensorflow)
if [ ${#fws[@]} -eq 0 ]; then
    echo "gpu-check: no GPU found: neither PyTorch, JAX nor TensorFlow sees a CUDA device; nothing was run" >&2
    exit 1
fi
frameworks=$(IFS=,; echo "${fws[*]}")
echo "gpu-check: frameworks that see a GPU: $frameworks; results in $OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

status=0
phase() {  # phase NAME LIMIT_S COMMAND...: run under its own limit, log to $OUT/NAME.log, one verdict line
    local name=$1 limit=$2 t0 rc
    shift 2
    t0=$(date +%s)
    timeout -k 15 "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        echo "gpu-check: $name: ran out of its ${limit} s (log $OUT/$name.log; finished records in its .partial.jsonl)"
    else
        echo "gpu-check: $name: exit $rc after $(( $(date +%s) - t0 )) s (log $OUT/$name.log)"
    fi
    grep -E '^xentcheck: [0-9]+ (records|benchmarks)' "$OUT/$name.log" | sed "s/^/gpu-check: $name: /"
    [ $rc -eq 0 ] || status=1
}

phase conformance "$CONFORMANCE_S" "$PY" -m pytest suites --device=cuda --frameworks="$frameworks" \
    --results="$OUT/gpu-conformance.json" --report="$OUT/gpu-conformance.html"
phase bench "$BENCH_S" "$PY" -m pytest suites/test_benchmarks.py --bench --benchmark-only --device=cuda \
    --frameworks="$frameworks" --bench-sizes=4096x32000,4096x128256 --bench-dtypes=float32,bfloat16 \
    --bench-modes=eager,compiled --bench-passes=forward,forward+backward \
    -k "F.cross_entropy or softmax_cross_entropy_with_integer_labels or tf.nn.sparse_softmax_cross_entropy_with_logits" \
    --results="$OUT/gpu-bench.json" --report="$OUT/gpu-bench.html"

# the fused linear + cross-entropy bindings (op linear_ce): every one the torch adapter declares on this
# machine (torch's own where its torch has F.linear_cross_entropy, Liger-Kernel, Cut Cross-Entropy), timed
# by the sweep at language-model sizes in bfloat16, forward and forward+backward: time against 6 N D V
# FLOPs at the matmul rate measured with torch.mm in the same run, peak memory (torch.cuda.max_memory_allocated
# after reset_peak_memory_stats) against inputs plus gradients. A binding declared with 4-row chunks is not
# timed at 8192 rows (2048 chunks; the record says so); --timeout bounds each configuration.
LINEAR_S=${XENTCHECK_GPU_LINEAR_S:-180}
if [[ ",$frameworks," == *",torch,"* ]]; then
    phase linear-ce "$LINEAR_S" "$PY" -m pytest suites/test_benchmarks.py --bench --benchmark-only --device=cuda \
        --frameworks=torch --bench-sizes=32x10 --bench-linear-sizes=8192x4096x128256,8192x4096x256000 \
        --bench-dtypes=bfloat16 --bench-modes=eager --bench-passes=forward,forward+backward --timeout=60 \
        -k "x4096x" --results="$OUT/gpu-linear-ce.json" --report="$OUT/gpu-linear-ce.html"
fi

inputs=("$@")
for f in "$OUT/gpu-conformance.json" "$OUT/gpu-bench.json" "$OUT/gpu-linear-ce.json"; do [ -f "$f" ] && inputs+=("$f"); done
if [ ${#inputs[@]} -gt 0 ]; then
    phase report 120 "$PY" -m reports build "${inputs[@]}" -o "$OUT/gpu-report.html"
else
    echo "gpu-check: report: no results file was written; nothing to merge" && status=1
fi
exit $status

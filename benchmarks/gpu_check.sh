#!/usr/bin/env bash
# GPU readiness in one call (issue 20 item 2), held to 8 minutes on one GPU: the CUDA
# tests, the moments up to n = 1M at d = 768, the sampler and probes on CUDA, and 1
# process vs every GPU under accelerate. Prints markdown tables to record in
# benchmarks/README.md. NOT RUN ON A GPU YET: no session of this project has had one.
#
#   bash benchmarks/gpu_check.sh                      # on the GPU machine, repo root or not
#   GPU_CHECK_DEVICE=cpu bash benchmarks/gpu_check.sh # dry run: every step, tiny, on CPU
#   GPU_CHECK_BUDGET_S=300 bash benchmarks/gpu_check.sh  # a shorter budget (default 480)
#   GPU_CHECK_STEPS="sampler probes" bash benchmarks/gpu_check.sh  # rerun only these steps
#
# Steps (keys for GPU_CHECK_STEPS, in the order they run): tests, moments, precision,
# 3xtf32, tf32, sampler, probes, accelerate.
#
# It needs no install of tp-harness: the repository goes on PYTHONPATH and the python is
# $PY, else `python`, else `python3` (the device image's python3 holds a CUDA torch). The
# core steps need torch, numpy, numba, threadpoolctl, pytest, hypothesis, scipy and
# scikit-learn; the accelerate step needs tp-harness[hf] too and is skipped, saying so,
# where that is missing. The dry run (tests/test_gpu_check.py runs it) checks every
# command line, import and table of this script without a GPU. A failing step is reported
# ("!! step failed: ...") and the later steps still run. The whole script keeps to
# GPU_CHECK_BUDGET_S seconds: each step's timeout is its own limit or what is left of the
# budget, whichever is less, and a step with under 10 s left is skipped ("!! step
# skipped: ..."). It ends with a table of every step's seconds and result; the exit
# status is 1 if any step failed, timed out or was skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PY:-}" ]; then
  if command -v python >/dev/null 2>&1; then PY=python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
DEVICE=${GPU_CHECK_DEVICE:-cuda}
case "$DEVICE" in
  cuda)  # the sizes the issue asks for
    DIM=768 COMPARE=16384 ALONE="100000 1000000" PRECISION=100000 BIG=1000000
    SAMPLER=(--loop-tasks 1) PROBES=() T_MOMENTS=200 T_MODE=120 ;;
  cpu)   # dry run: the same steps at sizes a 2-core machine does in about a minute
    DIM=64 COMPARE=2048 ALONE=4096 PRECISION=4096 BIG=8192
    SAMPLER=(--n 2000 --r 32 --tasks 16 --loop-tasks 1 --repeats 1)
    PROBES=(--n 1000 --dim 32 --num-tasks 8 --repeats 1 --sample 1) T_MOMENTS=120 T_MODE=60 ;;
  *) echo "GPU_CHECK_DEVICE=$DEVICE: use cuda (default) or cpu (dry run)" >&2; exit 2 ;;
esac
BUDGET=${GPU_CHECK_BUDGET_S:-480}
if ! [[ "$BUDGET" =~ ^[0-9]+$ ]] || [ "$BUDGET" -lt 10 ]; then
  echo "GPU_CHECK_BUDGET_S=$BUDGET: give whole seconds, at least 10 (default 480)" >&2; exit 2
fi
KEYS="tests moments precision 3xtf32 tf32 sampler probes accelerate"
STEPS=${GPU_CHECK_STEPS:-$KEYS}
for key in $STEPS; do
  if [[ " $KEYS " != *" $key "* ]]; then
    echo "GPU_CHECK_STEPS: unknown step '$key'; choose from: $KEYS" >&2; exit 2
  fi
done
$PY - "$DEVICE" <<'PY'
import importlib.util, sys
need = ["torch", "numpy", "numba", "threadpoolctl", "pytest", "hypothesis", "scipy", "sklearn"]
missing = [m for m in need if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check.sh: {sys.executable} lacks {', '.join(missing)} (pip install them)")
import torch
if sys.argv[1] == "cuda":
    assert torch.cuda.is_available(), "gpu_check.sh needs a CUDA device (torch.cuda.is_available())"
    name = f"{torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} GPU(s)"
else:
    name = f"CPU dry run, {torch.get_num_threads()} threads"
print(f"{sys.executable}: torch {torch.__version__}, {name}")
PY
export PY DEVICE
FAILED=() SUMMARY=()
# -- step() begins (tests/test_gpu_check.py runs this function alone)
# one step: KEY NAME LIMIT_S COMMAND... (skipped without a word unless KEY is in $STEPS):
# its header, the command under a timeout of LIMIT_S or the budget left, whichever is
# less, and on failure a note; the later steps still run (a lent GPU has minutes: one
# broken step must not cost the others' figures). A shell
# function as COMMAND runs in a child bash (its definition passed along), so the timeout
# stops it too; SIGKILL 10 s after the timeout's SIGTERM.
step() {
  [[ " $STEPS " == *" $1 "* ]] || return 0
  local name=$2 limit=$3; shift 3
  local left=$((BUDGET - SECONDS)) t0=$SECONDS rc=0 result
  echo "## $name"
  if [ "$left" -lt 10 ]; then
    echo "!! step skipped: ${left} s left of the ${BUDGET}-second budget"
    FAILED+=("$name (skipped: budget spent)"); SUMMARY+=("| $name | - | skipped (budget) |")
    return
  fi
  [ "$limit" -le "$left" ] || limit=$left
  if declare -F "$1" >/dev/null; then
    timeout -k 10 "$limit" bash -c "$(declare -f "$1"); $*" || rc=$?
  else
    timeout -k 10 "$limit" "$@" || rc=$?
  fi
  case $rc in
    0) result=passed ;;
    124) result="timed out after ${limit} s" ;;
    *) result="failed (exit status $rc)" ;;
  esac
  if [ "$rc" -ne 0 ]; then echo "!! step failed: $name ($result)"; FAILED+=("$name ($result)"); fi
  local took=$((SECONDS - t0))
  echo "-- $name: $took s, $result"
  SUMMARY+=("| $name | $took | $result |")
}
# -- step() ends
cuda_tests() {  # exit status 5 = no test selected: not a failure here
  $PY -m pytest -q -p no:cacheprovider -k cuda tests/core || [ $? -eq 5 ]
}
SECONDS=0  # the budget counts from here (the preflight above takes a few seconds)
step tests "CUDA tests" 180 cuda_tests
step moments "Moments on $DEVICE (d = r = $DIM: n = $COMPARE against dense, then $ALONE alone; \
on CUDA the tile epilogue through torch.compile/Triton, IEEE fp32 tile products)" \
  "$T_MOMENTS" $PY benchmarks/bench_moments.py --device "$DEVICE" --dim "$DIM" \
  --compare "$COMPARE" --alone $ALONE
step precision "Tile-product precision (TP_HARNESS_TILE_MATMUL) against float64, n = $PRECISION" \
  90 $PY benchmarks/bench_moments.py --device "$DEVICE" --dim "$DIM" \
  --precision "$PRECISION"
for MODE in 3xtf32 tf32; do
  step "$MODE" "n = $BIG, d = $DIM with TP_HARNESS_TILE_MATMUL=$MODE" \
    "$T_MODE" env TP_HARNESS_TILE_MATMUL=$MODE $PY benchmarks/bench_moments.py \
    --device "$DEVICE" --dim "$DIM" --compare --alone "$BIG"
done
step sampler "Sampler on $DEVICE" 60 $PY benchmarks/bench_sampler.py --device "$DEVICE" \
  "${SAMPLER[@]}"
step probes "Probes on $DEVICE" 60 $PY benchmarks/bench_probes.py --device "$DEVICE" \
  "${PROBES[@]}"

one_vs_all() {
  local n launch out
  if [ "$DEVICE" = cuda ]; then
    n=$($PY -c "import torch; print(torch.cuda.device_count())")
    launch=(--multi_gpu --num_processes "$n")
  else
    n=2 launch=(--num_processes 2)  # two CPU processes (gloo)
  fi
  if [ "$n" -lt 2 ]; then echo "one GPU: the 1 vs all comparison needs two or more"; return; fi
  if ! $PY -c "import accelerate, datasets, pydantic, transformers" 2>/dev/null; then
    echo "skipped: the accelerate step needs tp-harness[hf] (pip install -e '.[hf]')"; return
  fi
  out=$(mktemp -d)
  local args=(evaluate --model tfidf-lsa:dim=64 --model tfidf-lsa:dim=16
              --prior tfidf-lsa:dim=128 --num-examples 400 --num-tasks 32 --no-progress)
  # separate caches: the launched run embeds again instead of reading the first run's
  HF_HUB_OFFLINE=1 timeout 120 $PY -m tp_harness "${args[@]}" --output-dir "$out/one" \
    --cache-dir "$out/cache-one" || return
  HF_HUB_OFFLINE=1 timeout 120 $PY -m accelerate.commands.launch "${launch[@]}" \
    --num_machines 1 --mixed_precision no --dynamo_backend no \
    -m tp_harness "${args[@]}" --output-dir "$out/all" --cache-dir "$out/cache-all" || return
  $PY - "$out" <<'PY' || return
import json, sys
a = json.load(open(f"{sys.argv[1]}/one/results.json"))["scores"]
b = json.load(open(f"{sys.argv[1]}/all/results.json"))["scores"]
assert len(a) == len(b) > 0, (len(a), len(b))
assert [(x["model"], x["temperature"]) for x in a] == [(y["model"], y["temperature"]) for y in b]
for key in ("mean", "variance"):
    worst = max(abs(x[key] - y[key]) / max(abs(x[key]), 1e-30) for x, y in zip(a, b))
    print(f"1 vs all: {len(a)} scores, max relative difference of the {key} {worst:.1e}")
PY
  rm -rf "$out"
}
step accelerate "1 process vs all devices (accelerate launch), same scores" 240 one_vs_all

echo "## Steps ($SECONDS s of the ${BUDGET}-second budget)"
echo "| step | seconds | result |"
echo "|---|---|---|"
printf '%s\n' "${SUMMARY[@]}"
if [ ${#FAILED[@]} -gt 0 ]; then
  printf '!! %d step(s) did not pass:\n' "${#FAILED[@]}"; printf '   %s\n' "${FAILED[@]}"; exit 1
fi
echo "## all steps passed"

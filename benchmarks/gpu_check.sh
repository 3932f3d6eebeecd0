#!/usr/bin/env bash
# GPU readiness in one call (issue 20 item 2), meant to fit in 8 minutes on one GPU:
# the CUDA tests, the moments up to n = 1M at d = 768, the sampler and probes on CUDA,
# and 1 process vs every GPU under accelerate. Prints markdown tables to record in
# benchmarks/README.md. NOT RUN YET: no session of this project has had a GPU so far.
#
#   bash benchmarks/gpu_check.sh            # from the repository root, CUDA torch installed
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
$PY - <<'PY'
import torch
assert torch.cuda.is_available(), "gpu_check.sh needs a CUDA device (torch.cuda.is_available())"
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} GPU(s)")
PY
echo "## CUDA tests"
timeout 180 $PY -m pytest -q -x -k cuda tests/core
echo "## Moments on CUDA (d = r = 768: 16k against dense, then 100k and 1M alone)"
echo "## (the tile epilogue through torch.compile/Triton, IEEE fp32 tile products)"
timeout 200 $PY benchmarks/bench_moments.py --device cuda --dim 768 --compare 16384 \
  --alone 100000 1000000
echo "## Tile-product precision (TP_HARNESS_TILE_MATMUL) against float64, n = 100k, d = 768"
timeout 90 $PY benchmarks/bench_moments.py --device cuda --dim 768 --precision 100000
for MODE in 3xtf32 tf32; do
  echo "## n = 1M, d = 768 with TP_HARNESS_TILE_MATMUL=$MODE"
  TP_HARNESS_TILE_MATMUL=$MODE timeout 120 $PY benchmarks/bench_moments.py --device cuda \
    --dim 768 --compare --alone 1000000
done
echo "## Sampler and probes on CUDA"
timeout 60 $PY benchmarks/bench_sampler.py --device cuda --loop-tasks 1
timeout 60 $PY benchmarks/bench_probes.py --device cuda
echo "## 1 process vs all GPUs (accelerate launch), same scores"
N=$($PY -c "import torch; print(torch.cuda.device_count())")
if [ "$N" -lt 2 ]; then echo "one GPU: the 1 vs all comparison needs two or more"; exit 0; fi
OUT=$(mktemp -d)
ARGS=(evaluate --model tfidf-lsa:dim=64 --model tfidf-lsa:dim=16 --prior labels
      --num-examples 400 --num-tasks 32 --no-progress --cache-dir "$OUT/cache")
HF_HUB_OFFLINE=1 timeout 120 $PY -m tp_harness "${ARGS[@]}" --output-dir "$OUT/one"
HF_HUB_OFFLINE=1 timeout 120 $PY -m accelerate.commands.launch --multi_gpu --num_processes "$N" \
  -m tp_harness "${ARGS[@]}" --output-dir "$OUT/all"
$PY - "$OUT" <<'PY'
import json, sys
a = json.load(open(f"{sys.argv[1]}/one/results.json"))["scores"]
b = json.load(open(f"{sys.argv[1]}/all/results.json"))["scores"]
worst = max(abs(x["mean"] - y["mean"]) / max(abs(x["mean"]), 1e-30) for x, y in zip(a, b))
print(f"1 vs all GPUs: {len(a)} scores, max relative difference of the mean {worst:.1e}")
PY

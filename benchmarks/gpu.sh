#!/usr/bin/env bash
# Every GPU figure of issue #12, in one run on one card (H100 or H200), written to a markdown log:
#
#     bash benchmarks/gpu.sh [LOG]          # default LOG: gpu-bench.md (or $OUT/gpu-bench.md where $OUT is set)
#
# Needs a Python with the project's requirements (PYTHON, default .venv/bin/python, else python3), torchattacks in
# .bench-libs (see BENCHMARKS.md) and, for figures on real data, cifar10-jpeg (NORMSCOPE_DATA or ../shared/data);
# without it every step runs on the built-in data and says so. Steps, in the order of the issue:
#   1. pytest -m cuda: the core paths on CUDA beside their CPU results;
#   2. training throughput, full-width ResNet18 at batch 128 (and 512): plain loops, CUDA-graph loop, trainer;
#   3. the gpu preset's ResNet18-BN (40 epochs, scripts/build_zoo.py --preset gpu): clean accuracy >= 92 %?;
#   4. PGD-20 vs torchattacks on the zoo's width-0.25 ResNet18-BN and on the full-width one of step 3, fp32 and bf16;
#   5. how far bf16 moves the zoo's robust accuracies from fp32 (scripts/precision_check.py).
# Each step runs even if an earlier one failed; its exit status is logged.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
LOG=${1:-${OUT:+$OUT/}gpu-bench.md}
FULL=runs/zoo/cifar10jpeg-resnet18-bn-full.safetensors

step() {  # title, command...
    local title=$1; shift
    printf '\n## %s\n\n    %s\n\n' "$title" "$*"
    local start=$SECONDS
    "$@" 2>&1
    printf '\n(exit %s, %s s)\n' "$?" "$((SECONDS - start))"
}

{
    printf '# GPU benchmarks, %s\n\n' "$(date -u +%F)"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
    "$PYTHON" -c 'from core.data import resolve_name; print("dataset:", resolve_name("auto"))'
    step "CUDA tests" "$PYTHON" -m pytest -q -m cuda tests
    step "Training, ResNet18 width 1, batch 128" \
        "$PYTHON" benchmarks/train_speed.py --device cuda --arch resnet18 --width 1 --n 50000 --batch 128 --warmup 20
    step "Training, ResNet18 width 1, batch 512" \
        "$PYTHON" benchmarks/train_speed.py --device cuda --arch resnet18 --width 1 --n 50000 --batch 512 --warmup 20
    step "gpu preset: ResNet18-BN, 40 epochs" \
        "$PYTHON" scripts/build_zoo.py --preset gpu --device cuda --only cifar10jpeg-resnet18-bn-full
    "$PYTHON" -c "import json; m = json.load(open('${FULL%.safetensors}.json')); \
print('final clean accuracy', m['final_metrics']['test_accuracy'], 'seconds', sum(h['seconds'] for h in m['history']))"
    step "PGD-20, zoo ResNet18-BN width 0.25" env PYTHONPATH=.bench-libs "$PYTHON" benchmarks/attack_speed.py \
        --device cuda --checkpoint checkpoints/cifar10jpeg-resnet18-bn.safetensors --n 2000 --precision fp32 bf16
    step "PGD-20, ResNet18-BN width 1 (step 3)" env PYTHONPATH=.bench-libs "$PYTHON" benchmarks/attack_speed.py \
        --device cuda --checkpoint "$FULL" --n 2000 --precision fp32 bf16
    step "bf16 vs fp32 on the zoo" "$PYTHON" scripts/precision_check.py --device cuda
} 2>&1 | tee "$LOG"

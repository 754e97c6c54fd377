#!/usr/bin/env bash
# Every GPU figure of issue #12, on one card (H100 or H200), written to a markdown log:
#
#     bash benchmarks/gpu.sh [speed|preset|all] [LOG]     # default: all; LOG gpu-bench-<part>.md (under $OUT if set)
#
# Needs a Python with the project's requirements (PYTHON, default .venv/bin/python, else python3), torchattacks in
# .bench-libs (see BENCHMARKS.md) and, for figures on real data, cifar10-jpeg (NORMSCOPE_CIFAR10_JPEG, or
# ../shared/data); without it every step runs on the built-in data, and the log says which dataset was used: the
# speed figures do not depend on the images, the accuracies do (a device lease carries the repository, 61 MiB of its
# 64 MiB, so the 56 MB cifar10-jpeg cannot travel with it).
# A parked training state (checkpoints/in-progress/, ~18 MB a run; README, "Reference zoo") takes the repository
# over the lease's 64 MiB: move that folder out of the working tree for the lease, and back after it.
# Two parts, each under 10 minutes on an H100 (a device lease allows 10 minutes a command):
#   speed:  pytest -m cuda (the core paths on CUDA beside their CPU results); training throughput of a full-width
#           ResNet18 at batch 128 and 512 (plain loop, data-on-GPU loop, CUDA-graph loop, the trainer in fp32, bf16
#           and bf16 compiled); PGD-20 vs torchattacks on the zoo's width-0.25 ResNet18-BN, fp32 and bf16; bf16 vs
#           fp32 on the zoo (scripts/precision_check.py).
#   preset: the gpu preset's full-width ResNet18-BN (40 epochs via scripts/build_zoo.py --preset gpu: its clean
#           accuracy and time), then PGD-20 vs torchattacks on it, fp32 and bf16. It needs cifar10-jpeg (or
#           CIFAR-10) on the machine: a GPU box of one's own, or a leaner repository than a device lease carries now.
# Each step runs even if an earlier one failed, for at most STEP_TIMEOUT seconds (default 300; the preset's
# training 540); its exit status and time are logged.
set -uo pipefail
cd "$(dirname "$0")/.."
PART=${1:-all}
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
LOG=${2:-${OUT:+$OUT/}gpu-bench-$PART.md}
FULL=runs/zoo/cifar10jpeg-resnet18-bn-full

step() {  # title, command...
    local title=$1; shift
    printf '\n## %s\n\n    %s\n\n' "$title" "$*"
    local start=$SECONDS
    timeout "${STEP_TIMEOUT:-300}" "$@" 2>&1
    printf '\n(exit %s, %s s)\n' "$?" "$((SECONDS - start))"
}

attack_speed() {  # title, checkpoint
    step "$1" env PYTHONPATH=.bench-libs "$PYTHON" benchmarks/attack_speed.py --device cuda --checkpoint "$2" \
        --n 2000 --precision fp32 bf16 --dataset auto
}

speed() {
    step "CUDA tests" "$PYTHON" -m pytest -q -m cuda tests
    step "Training, ResNet18 width 1, batch 128" "$PYTHON" benchmarks/train_speed.py --device cuda --arch resnet18 \
        --width 1 --n 25600 --batch 128 --warmup 20
    step "Training, ResNet18 width 1, batch 512" "$PYTHON" benchmarks/train_speed.py --device cuda --arch resnet18 \
        --width 1 --n 25600 --batch 512 --warmup 20 --repeats 1
    attack_speed "PGD-20, zoo ResNet18-BN width 0.25" checkpoints/cifar10jpeg-resnet18-bn.safetensors
    step "bf16 vs fp32 on the zoo" "$PYTHON" scripts/precision_check.py --device cuda --dataset auto
}

preset() {
    STEP_TIMEOUT=540 step "gpu preset: ResNet18-BN, 40 epochs" "$PYTHON" scripts/build_zoo.py --preset gpu \
        --device cuda --only cifar10jpeg-resnet18-bn-full
    "$PYTHON" -c "import json; m = json.load(open('$FULL.json')); print('final clean accuracy', \
m['final_metrics']['test_accuracy'], 'in', round(sum(h['seconds'] for h in m['history'])), 's')"
    attack_speed "PGD-20, ResNet18-BN width 1 (the gpu preset's)" "$FULL.safetensors"
}

{
    printf '# GPU benchmarks (%s), %s\n\n' "$PART" "$(date -u +%F)"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
    "$PYTHON" -c 'from core.data import resolve_name; print("dataset:", resolve_name("auto"))'
    case $PART in
        speed) speed ;;
        preset) preset ;;
        all) speed; preset ;;
        *) echo "unknown part $PART: speed, preset or all"; exit 2 ;;
    esac
} 2>&1 | tee "$LOG"

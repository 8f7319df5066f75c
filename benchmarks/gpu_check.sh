#!/usr/bin/env bash
# Every GPU path of the project, working and priced, in under 8 minutes on one GPU:
#   bash benchmarks/gpu_check.sh            # CUDA: sampling smoke tests (sampler x precision x compile),
#                                           # bench_sampling and bench_guidance at 64x64, the evaluator's
#                                           # precision/recall at 50,000 x 2,048
#   bash benchmarks/gpu_check.sh --small    # the same steps on the CPU at toy sizes (under 3 minutes)
# Logs of every step go to $OUT (default gpu_check_out/); one table at the end (also $OUT/summary.md).
# The exit status is 1 if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
SMALL=0
[[ "${1:-}" == "--small" ]] && SMALL=1
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
PY=${PYTHON:-python}
ROWS=()
FAILED=0

if [[ $SMALL == 0 ]] && ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: no CUDA device visible to torch; run with --small for the CPU version" >&2
    exit 2
fi

# step NAME RESULT_GREP COMMAND...: run, time, keep the log, grab one line of result
step() {
    local name=$1 grab=$2
    shift 2
    local log="$OUT/${name//[^A-Za-z0-9_.-]/_}.log"
    local start=$SECONDS
    if "$@" >"$log" 2>&1; then
        local status=ok
    else
        local status=FAILED
        FAILED=1
    fi
    local result
    result=$(grep -E "$grab" "$log" | tail -n 1 | tr -s ' ' | cut -c1-110)
    [[ $status == FAILED ]] && result=$(grep -E "error|Error" "$log" | tail -n 1 | cut -c1-110)
    ROWS+=("| $name | $status | $((SECONDS - start)) | ${result:-} |")
    echo "$name: $status ($((SECONDS - start)) s)"
}

$PY -c "import torch; d = torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'; \
print(f'torch {torch.__version__}, {d}, {torch.get_num_threads()} CPU threads')" | tee "$OUT/device.txt"

# 1. the main job on the shipped digit models: every sampler in every precision (and compiled)
if [[ $SMALL == 1 ]]; then
    PRECISIONS="fp32 bf16"; SAMPLE="--num_samples 2 --batch_size 2 --timestep_respacing 3"; COMPILED="dpmpp_2m"
else
    PRECISIONS="fp32 bf16 fp16"; SAMPLE="--num_samples 256 --batch_size 256 --timestep_respacing 20"
    COMPILED="ddpm ddim dpmpp_2m"
fi
for sampler in ddpm ddim dpmpp_2m dpmpp_2m_sde; do
    for precision in $PRECISIONS; do
        step "sample $sampler $precision" "sampling complete" env OPENAI_LOGDIR="$OUT/sample_${sampler}_${precision}" \
            $PY scripts/prog_classifier_sample.py $SAMPLE --sampler "$sampler" --precision "$precision"
    done
done
# (--small: torch.compile's eager backend, which captures the graphs without the minutes of C++ code generation)
BACKEND=$([[ $SMALL == 1 ]] && echo eager || echo inductor)
for sampler in $COMPILED; do
    step "sample $sampler bf16 compile ($BACKEND)" "sampling complete" \
        env OPENAI_LOGDIR="$OUT/sample_${sampler}_compiled" GUIDED_DIFFUSION_COMPILE_BACKEND=$BACKEND \
        $PY scripts/prog_classifier_sample.py $SAMPLE --sampler "$sampler" --precision bf16 --compile True
done

# 2. what a guided sample costs: ADM's way against the fast settings; 3. the guidance variants' step cost
if [[ $SMALL == 1 ]]; then
    step "bench_sampling digits" "dpmpp_2m-20 +bf16" $PY benchmarks/bench_sampling.py --configs digits \
        --batch_size 8 --steps 1 --repeats 1 --samplers ddpm,dpmpp_2m
    step "bench_guidance tiny" "^tiny" $PY benchmarks/bench_guidance.py --configs tiny --batch_size 2 --repeats 2
    step "precision/recall 2,000 x 2,048" "^ +2000 " $PY benchmarks/bench_metrics.py --sizes 2000 \
        --extract-images 2 --batch-size 2 --skip-numpy-above 0
else
    step "bench_sampling 64x64" "dpmpp_2m-20 +bf16 +yes" $PY benchmarks/bench_sampling.py --configs 64x64 \
        --batch_size 64 --steps 3 --repeats 3 --compile
    step "bench_guidance 64x64 fp16" "^64x64" $PY benchmarks/bench_guidance.py --configs 64x64 --batch_size 64 \
        --repeats 5 --precision fp16
    step "precision/recall 50,000 x 2,048" "^ +50000 " $PY benchmarks/bench_metrics.py --sizes 50000 \
        --extract-images 512 --batch-size 128 --skip-numpy-above 0
fi

{
    echo "| step | status | seconds | result |"
    echo "|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
} | tee "$OUT/summary.md"
exit $FAILED

# Shared by the reproduction scripts (sourced, not run). A row script sets:
#   ROW            a name (its output folder under $OUT)
#   TITLE          what it reproduces
#   RES            64, 128 or 256 (picks the reference batch)
#   MODEL          checkpoint file name under $MODELS (a released one's name sets its flags)
#   MODEL_FLAGS    only for a model ADM did not release: its flags ("$(released_flags FILE flag value)")
#   CLASSIFIER     classifier file name ("" for none)
#   GUIDANCE       flags of scripts/prog_classifier_sample.py (--guidance, --classifier_scale, --gamma, ...)
#   PAPER          the paper's numbers, "IS FID sFID Prec Rec" (or "Robustness FID" with ROBUSTNESS=1);
#                  robustness is measured for every row whose samples have meaningful labels
#   NOT_RELEASED   set when ADM released no such checkpoint: how to make one
# and calls `reproduce`. Environment: MODELS (default ./models), REF_BATCHES (./ref_batches),
# OUT (./runs/reproduce), GPUS (8), BATCH, NUM_SAMPLES (50000); DRY_RUN=1 prints the sampling
# command and stops.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODELS="${MODELS:-$ROOT/models}"
REF_BATCHES="${REF_BATCHES:-$ROOT/ref_batches}"
OUT="${OUT:-$ROOT/runs/reproduce}"
GPUS="${GPUS:-8}"
NUM_SAMPLES="${NUM_SAMPLES:-50000}"
RELEASE=https://openaipublic.blob.core.windows.net/diffusion/jul-2021

released_flags() {  # released_flags FILE [--flag value ...]: FILE's flags from the package's table, with changes
  python -c 'import sys; from guided_diffusion.models.released import RELEASED, command_line
flags = {**RELEASED[sys.argv[1]].flags, **dict(zip(sys.argv[2::2], sys.argv[3::2]))}
print(command_line(flags))' "$1" "${@:2}"
}

missing_files() {  # prints "PATH (where to get it)" for every needed file that is absent
  local ref="$REF_BATCHES/VIRTUAL_imagenet${RES}_labeled.npz"
  [ -f "$MODELS/$MODEL" ] || {
    if [ -n "${NOT_RELEASED:-}" ]; then echo "$MODELS/$MODEL (not released by ADM: $NOT_RELEASED)"
    else echo "$MODELS/$MODEL (download: $RELEASE/$MODEL)"; fi; }
  if [ -n "${CLASSIFIER:-}" ] && [ ! -f "$MODELS/$CLASSIFIER" ]; then
    echo "$MODELS/$CLASSIFIER (download: $RELEASE/$CLASSIFIER)"
  fi
  [ -f "$ref" ] || echo "$ref (download: $RELEASE/ref_batches/imagenet/$RES/VIRTUAL_imagenet${RES}_labeled.npz)"
}

sample_command() {
  local classifier=()
  [ -n "${CLASSIFIER:-}" ] && classifier=(--classifier_path "$MODELS/$CLASSIFIER")
  echo python "$ROOT/scripts/prog_classifier_sample.py" ${MODEL_FLAGS:-} --model_path "$MODELS/$MODEL" \
    "${classifier[@]}" $GUIDANCE --num_samples "$NUM_SAMPLES" --batch_size "${BATCH:-$DEFAULT_BATCH}" \
    --timestep_respacing 250 --label_set imagenet1k
}

reproduce() {
  local DEFAULT_BATCH=$([ "$RES" = 64 ] && echo 256 || echo 64)
  if [ -n "${DRY_RUN:-}" ]; then sample_command; return 0; fi
  local missing; missing="$(missing_files)"
  if [ -n "$missing" ]; then
    echo "error: $ROW needs these files, missing:" >&2
    echo "$missing" | sed 's/^/  /' >&2
    exit 1
  fi
  local dir="$OUT/$ROW" ref="$REF_BATCHES/VIRTUAL_imagenet${RES}_labeled.npz"
  mkdir -p "$dir"
  echo "== $TITLE"
  OPENAI_LOGDIR="$dir" mpiexec -n "$GPUS" $(sample_command)    # resumes if killed: rerun the script
  local samples; samples="$(ls "$dir"/samples_*.npz)"
  python "$ROOT/evaluations/evaluator.py" "$ref" "$samples" --json "$dir/metrics.json"
  case "$MODEL $GUIDANCE" in  # robustness needs labels that the samples were drawn for
    *_uncond.pt*"--guidance none"*) ;;
    *) python "$ROOT/evaluations/robustness.py" "$samples" --json "$dir/robustness.json" ;;
  esac
  python "$ROOT/scripts/reproduce/compare.py" "$dir" --title "$TITLE" --paper $PAPER ${ROBUSTNESS:+--robustness}
}

#!/usr/bin/env bash
# Compute the roadmap56 table one model at a time (model-major, so each model's bundle completes as
# early as possible), resumably: run it again after an interruption and finished (model, task, seed)
# fits are kept. Then bundle each complete model and render the page:
#
#   OUT=/scratch/rm56 leaderboards/roadmap56-simremc/build.sh            # compute (hours on 2 cores)
#   leaderboards/roadmap56-simremc/build.sh bundle                       # bundle + render what is complete
#
# MODELS overrides the order/set; WORKERS the local worker count (default 1: the kernels use the cores).
# DATA=simremc@1.2 builds the table on simremc 1.2 instead: its own page (leaderboards/roadmap56-simremc-1.2)
# and its own default OUT, so the two versions' records never meet in one bundle.
set -euo pipefail
cd "$(dirname "$0")/../.."  # the repository root: the page's commands then name relative paths
DATA="${DATA:-simremc}"
case "$DATA" in
  simremc)     here="leaderboards/roadmap56-simremc";     out_default="chrombench-out/roadmap56" ;;
  simremc@1.2) here="leaderboards/roadmap56-simremc-1.2"; out_default="chrombench-out/roadmap56-1.2" ;;
  *) echo "DATA=$DATA: this script builds simremc (1.1) or simremc@1.2" >&2; exit 2 ;;
esac
OUT="${OUT:-$out_default}"
WORKERS="${WORKERS:-1}"
MODELS="${MODELS:-logistic-regression xgboost random-forest deepchrome shallowchrome svm lstm attentivechrome-unidirectional attentivechrome hm-crnn attentivechrome-no-beta attentivechrome-no-alpha transferchrome chromoformer deepchrome2 patternchrome}"
CB="${CHROMBENCH:-chrombench}"

if [ "${1:-}" = "bundle" ]; then
  for m in $MODELS; do
    if [ -f "$here/zoo/$m/bundle.json" ] && [ -z "${REBUNDLE:-}" ]; then
      echo "kept $m (its bundle exists; REBUNDLE=1 to make it again)"  # a new column touches no other
      continue
    fi
    if "$CB" leaderboard bundle "$OUT/results" --suite roadmap56 -m "$m" --out "$here/zoo" --overwrite; then
      echo "bundled $m"
    else
      echo "not (yet) complete: $m"
    fi
  done
  # 200 bootstrap resamples: at 6,600 test genes a task's interval is narrow, and the page stays quick to
  # re-render as columns land (tests/test_shipped_leaderboard.py renders it again with the same count)
  prefix=""; title="chrombench roadmap56 (simremc)"
  if [ "$DATA" != simremc ]; then prefix="DATA=$DATA "; title="chrombench roadmap56 ($DATA)"; fi
  exec "$CB" leaderboard render --results "$here/zoo" --out "$here" --title "$title" --bootstrap 200 \
    --reproduce "${prefix}OUT=$out_default leaderboards/roadmap56-simremc/build.sh && ${prefix}leaderboards/roadmap56-simremc/build.sh bundle"
fi

mkdir -p "$OUT"
for m in $MODELS; do
  # A column computed in part by an earlier session ships its finished fits as pending/<model>.tar.gz (paths
  # under OUT); they seed OUT without replacing anything there, and the run below computes only the rest.
  if [ -f "$here/pending/$m.tar.gz" ]; then
    tar -xzf "$here/pending/$m.tar.gz" -C "$OUT" --skip-old-files
    echo "seeded $m from $here/pending/$m.tar.gz ($(tar -tzf "$here/pending/$m.tar.gz" | grep -c 'seed-[0-9]*\.json$') finished fits)"
  fi
done
# One run over every model, model-major (--order model): the columns still complete one after the other,
# and a worker with nothing left of one model starts on the next instead of waiting for the other
# worker's last fit, so both cores stay busy across column boundaries.
start=$(date +%s)
models_args=(); for m in $MODELS; do models_args+=(-m "$m"); done
"$CB" run "${models_args[@]}" --order model --suite roadmap56 --data "$DATA" --output-dir "$OUT" --workers "$WORKERS" --no-progress
printf '%s\t%s\t%s\n' "$MODELS" "$(( $(date +%s) - start ))" "$(date -u +%FT%TZ)" >> "$OUT/wall-seconds.tsv"

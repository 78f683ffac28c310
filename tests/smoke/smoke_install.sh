#!/usr/bin/env bash
# Installs the project on one Python into a fresh virtual environment, with constraints.txt, and
# checks that it works there. Not part of the pytest suite; .ci/run runs it on every supported
# Python other than the default one.
#
#   bash tests/smoke/smoke_install.sh VERSION editable   # pip install -c constraints.txt -e . (the README's)
#   bash tests/smoke/smoke_install.sh VERSION wheel      # python -m build, then the wheel, outside the checkout
#
# VERSION is a minor version (3.12); its interpreter is looked up among pyenv's versions (highest
# patch release), then as pythonVERSION on PATH. Every check compares outputs with what they must
# be; any failure ends the script with a non-zero status. Everything is written to a temporary
# directory that is removed at the end; pip's cache is used as usual.
set -euo pipefail

VERSION=${1:?usage: smoke_install.sh VERSION editable|wheel}
MODE=${2:?usage: smoke_install.sh VERSION editable|wheel}
case "$MODE" in editable | wheel) ;; *) echo "smoke: unknown mode '$MODE' (editable or wheel)" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
unset PYTHONPATH VIRTUAL_ENV PIP_REQUIRE_VIRTUALENV

PASSED=0
say() { echo "smoke[$VERSION $MODE]: $*"; }
ok() { PASSED=$((PASSED + 1)); say "$*: ok"; }
fail() {
  echo "smoke[$VERSION $MODE]: FAILED: $*" >&2
  echo "smoke: $PASSED passed, 1 failed"
  exit 1
}

# ----- the interpreter ------------------------------------------------------------------------
find_python() {
  local root candidate
  root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  candidate=$(ls -d "$root"/versions/"$VERSION".*/bin/python 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$candidate" ]; then
    candidate=$(command -v "python$VERSION" || true)
  fi
  if [ -n "$candidate" ] \
    && [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$VERSION" ]; then
    echo "$candidate"
  fi
}
PYTHON=$(find_python)
[ -n "$PYTHON" ] || fail "Python $VERSION is not installed on this machine (looked in $(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")/versions/$VERSION.* and for python$VERSION on PATH)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/smoke-$VERSION-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
START=$SECONDS
say "$("$PYTHON" --version) at $PYTHON; working in $TMP"

"$PYTHON" -m venv "$TMP/venv"
VPY="$TMP/venv/bin/python"
export PATH="$TMP/venv/bin:$PATH"
CHECK=("$VPY" "$ROOT/tests/smoke/smoke_checks.py")

# ----- install -------------------------------------------------------------------------------
cd "$ROOT"
if [ "$MODE" = editable ]; then
  say "pip install -c constraints.txt -e ."
  "$VPY" -m pip install -c constraints.txt -e . > "$TMP/pip.log" 2>&1 || { tail -n 30 "$TMP/pip.log" >&2; fail "pip install -c constraints.txt -e ."; }
else
  say "python -m build (the sdist, then the wheel from it)"
  "$VPY" -m pip install -c constraints.txt build > "$TMP/pip.log" 2>&1 || { tail -n 30 "$TMP/pip.log" >&2; fail "pip install build"; }
  "$VPY" -m build --outdir "$TMP/dist" . > "$TMP/build.log" 2>&1 || { tail -n 30 "$TMP/build.log" >&2; fail "python -m build"; }
  WHEEL=$(ls "$TMP"/dist/*.whl) || fail "python -m build made no wheel: $(ls "$TMP/dist")"
  [ "$(wc -l <<< "$WHEEL")" -eq 1 ] || fail "python -m build made more than one wheel: $WHEEL"
  git -C "$ROOT" ls-files -- nas search_space controller proxy_trainer experiments > "$TMP/tracked.txt" \
    || fail "git ls-files (the wheel check needs the git checkout)"
  "${CHECK[@]}" wheel "$WHEEL" "$TMP/tracked.txt" || fail "the wheel's contents"
  ok "the wheel's contents"
  say "pip install -c constraints.txt ${WHEEL##*/}"
  "$VPY" -m pip install -c constraints.txt "$WHEEL" >> "$TMP/pip.log" 2>&1 || { tail -n 30 "$TMP/pip.log" >&2; fail "pip install the wheel"; }
fi
"$VPY" -m pip check > /dev/null || { "$VPY" -m pip check >&2; fail "pip check"; }
"${CHECK[@]}" lock "$ROOT/constraints.txt" || fail "the installed packages against constraints.txt"
[ "$(command -v nas-search)" = "$TMP/venv/bin/nas-search" ] || fail "nas-search is $(command -v nas-search), not the venv's"
ok "installed, as constraints.txt pins it, in $((SECONDS - START)) s"

# ----- the checks, outside the checkout --------------------------------------------------------
RUN="$TMP/run"
mkdir -p "$RUN/evaluators"
cp "$ROOT/tests/nas/toy_evaluators.py" "$RUN/evaluators/"
cd "$RUN"
"${CHECK[@]}" imports "$ROOT" "$MODE" || fail "where the packages are imported from"
ok "the packages import from $([ "$MODE" = editable ] && echo "the checkout" || echo "site-packages")"

out=$(nas-search --help) || fail "nas-search --help exited non-zero"
grep -q '^usage: nas-search COMMAND' <<< "$out" || fail "nas-search --help: no usage line: $out"
for command in space data search resume status export plot describe; do
  grep -qE "^  $command " <<< "$out" || fail "nas-search --help does not list '$command'"
done
out=$(nas-train --help) || fail "nas-train --help exited non-zero"
grep -q '^usage: nas-train ' <<< "$out" || fail "nas-train --help: no usage line: $out"
ok "nas-search --help, nas-train --help"

nas-search space --experiment=synthetic_smoke --json > space.json || fail "nas-search space exited non-zero"
"${CHECK[@]}" space space.json || fail "nas-search space"
ok "nas-search space --experiment=synthetic_smoke"

nas-search describe --arch=preset:spinenet49 --model_id=49 --input_size=640 --num_classes=90 --json > describe.json \
  || fail "nas-search describe exited non-zero"
"${CHECK[@]}" describe describe.json || fail "nas-search describe"
ok "nas-search describe --arch=preset:spinenet49"

# A short search on a local Ray with a cheap evaluator, whose module is found through PYTHONPATH.
PYTHONPATH="$RUN/evaluators" nas-search search --experiment=synthetic_smoke --workdir="$RUN/search" \
  --evaluator=toy_evaluators:deterministic --max_trials=4 \
  --params_override=search.fresh_worker_per_trial=false,search.trial_cpus=1 --json > search.json 2> search.err \
  || { tail -n 20 search.err >&2; fail "nas-search search exited non-zero"; }
nas-search status --workdir="$RUN/search" --json > status.json || fail "nas-search status exited non-zero"
"${CHECK[@]}" search search.json status.json 4 || fail "nas-search search"
ok "nas-search search (4 trials on a local Ray) and status"

# One tiny training and COCO evaluation of SpineNet-49 on generated data.
TINY="trainer.train_steps=4,trainer.batch_size=4,trainer.log_interval=2,trainer.eval_batch_size=8"
TINY="$TINY,data.synthetic.num_images=48,data.holdout_size=16,model.head_num_convs=1,model.head_num_filters=16"
nas-train --arch=preset:spinenet49 --experiment=synthetic_smoke --workdir="$RUN/train" --seed=1 \
  --params_override="$TINY,data.cache_dir=$RUN/cache" > train.json 2> train.err \
  || { tail -n 20 train.err >&2; fail "nas-train exited non-zero"; }
"${CHECK[@]}" train train.json train/metrics.json 4 || fail "nas-train"
grep -q "nas-train: step 4/4 loss" train.err || fail "nas-train logged no step 4/4: $(tail -n 5 train.err)"
ok "nas-train (4 steps of SpineNet-49, then its COCO evaluation)"

say "all checks passed in $((SECONDS - START)) s"
echo "smoke: $PASSED passed, 0 failed"

#!/usr/bin/env bash
# Runs the test suite once per Keras backend: TensorFlow (everything), then JAX and torch (the tests marked
# `multibackend`). Extra arguments go to pytest. Uses $PYTHON, else the active environment's python.
#
# By default (LANES=2) the TensorFlow pass runs beside the JAX and torch passes, which run one after the other:
# most of a pass is single-threaded (tracing, XLA compiles, small eager ops), so on 2 cores two passes side by
# side take less wall time than one after the other. Each pass writes its own log and pytest temp folder; the
# logs are printed in backend order once every pass has ended. LANES=1 runs the passes one after the other,
# printing as they go.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
BACKEND_LIST=(${BACKENDS:-tensorflow jax torch})
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

run_pass() {  # run_pass BACKEND [pytest args...]: one backend's pass; its exit status
  local backend=$1 start status
  shift
  echo "=== KERAS_BACKEND=$backend"
  start=$(date +%s)
  KERAS_BACKEND=$backend "$PY" -m pytest -q -p no:cacheprovider --basetemp="$scratch/tmp-$backend" "$@"
  status=$?
  echo "=== KERAS_BACKEND=$backend took $(($(date +%s) - start)) s"
  return $status
}

status=0
if [ "${LANES:-2}" = 1 ] || [ ${#BACKEND_LIST[@]} -lt 2 ]; then
  for backend in "${BACKEND_LIST[@]}"; do
    run_pass "$backend" "$@" || status=1
  done
  exit $status
fi

start=$(date +%s)
first=${BACKEND_LIST[0]}
(run_pass "$first" "$@" >"$scratch/$first.log" 2>&1; echo $? >"$scratch/$first.rc") &
(
  for backend in "${BACKEND_LIST[@]:1}"; do
    run_pass "$backend" "$@" >"$scratch/$backend.log" 2>&1
    echo $? >"$scratch/$backend.rc"
  done
) &
wait
for backend in "${BACKEND_LIST[@]}"; do
  cat "$scratch/$backend.log"
  [ "$(cat "$scratch/$backend.rc" 2>/dev/null)" = 0 ] || status=1
done
echo "=== all passes took $(($(date +%s) - start)) s (two lanes)"
exit $status

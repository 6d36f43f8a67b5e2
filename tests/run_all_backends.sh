#!/usr/bin/env bash
# Runs the test suite once per Keras backend: TensorFlow (everything), then JAX and torch (the tests marked
# `multibackend`). Extra arguments go to pytest. Uses $PYTHON, else the active environment's python.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
status=0
for backend in ${BACKENDS:-tensorflow jax torch}; do
  echo "=== KERAS_BACKEND=$backend"
  start=$(date +%s)
  KERAS_BACKEND=$backend "$PY" -m pytest -q -p no:cacheprovider "$@" || status=1
  echo "=== KERAS_BACKEND=$backend took $(( $(date +%s) - start )) s"
done
exit $status

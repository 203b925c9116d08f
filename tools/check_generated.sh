#!/bin/sh
# Fails when a generated file is stale: aws/models_gen.c must equal what
# tools/gen_models.py produces from aws/api/operations.txt and botocore, and
# tests/golden/serialize/ what tools/gen_serialize_golden.py produces.
set -eu
cd "$(dirname "$0")/.."
py="${PYTHON:-/usr/bin/python3}"
"$py" tools/gen_models.py --check
"$py" tools/gen_serialize_golden.py --check

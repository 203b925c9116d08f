#!/bin/sh
# Fails when a generated source file is stale: aws/models_gen.c must equal
# what tools/gen_models.py produces from aws/api/operations.txt and botocore.
set -eu
cd "$(dirname "$0")/.."
exec "${PYTHON:-/usr/bin/python3}" tools/gen_models.py --check

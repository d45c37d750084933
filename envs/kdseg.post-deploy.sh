#!/usr/bin/env bash
# Run by Snakemake inside the freshly created conda env, from the workflow's working directory
# (the repository root): install kdseg itself (its dependencies come from kdseg.yaml).
set -euo pipefail
python -m pip install --no-deps -e .

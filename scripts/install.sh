#!/usr/bin/env bash
# Install kdseg into ./.venv from nothing: Debian tools (when root and apt-get exist), a Python 3.11
# virtual environment, and the project with its pinned dependencies and the extras in
# KDSEG_EXTRAS (default "dev,cluster": the tests, and the SLURM executor plugin the SLURM test
# and profiles/slurm use; KDSEG_EXTRAS=dev leaves the plugin out).
# Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

# poppler-utils: pdftotext (report tests); texlive-*: the LaTeX path of the PDF tables
DEBIAN_PACKAGES=(poppler-utils texlive-latex-base texlive-latex-extra texlive-fonts-recommended)

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "[install] apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
else
  echo "[install] not root or no apt-get: skipping Debian packages (${DEBIAN_PACKAGES[*]})"
fi

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "[install] kdseg needs Python 3.11 (found $("$PYTHON" --version))" >&2; exit 1; }

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
EXTRAS="${KDSEG_EXTRAS:-dev,cluster}"
stamp=.venv/.kdseg-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$(cat "$stamp")" != "$EXTRAS" ]; then
  echo "[install] pip install -e .[$EXTRAS] (torch comes from the local wheel cache when present)"
  log=$(mktemp)
  if ! .venv/bin/pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]" >"$log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$log" >&2; rm -f "$log"; exit 1
  fi
  rm -f "$log"
  .venv/bin/python -c "import kdseg.datasets, kdseg.methods, torch" # fail loudly if it did not work
  case ",$EXTRAS," in
    *,cluster,*) .venv/bin/python -c "import snakemake_executor_plugin_slurm" ;;
  esac
  echo "$EXTRAS" > "$stamp"
fi
echo "[install] ready: $(.venv/bin/python -c 'import torch, kdseg; print("kdseg", kdseg.__version__, "torch", torch.__version__)')"

#!/usr/bin/env bash
# Build the side virtual environment with the study's own diffusers release (0.11.1), in
# which tests/study_reference.py runs the real StableDiffusionInpaintPipelineLegacy.
#
#   bash tests/study_venv.sh [VENV_DIR]     (default: .venv-study in the repo root)
#
# Idempotent: an existing venv that already imports the pinned versions is left alone.
# torch is the same 2.13.0 CPU wheel as the main venv's (it lies on the machine's disk);
# it is installed first, on its own, and then pinned by a constraint so that no later
# requirement can make pip fetch a different (multi-GB) torch. The rest comes from the
# package index: the versions that STUDY.md found to work with 0.11.1 next to torch 2.13.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$REPO/.venv-study}"
PY="$VENV/bin/python"

# Checks the pinned versions, not just the imports: a half-built or stale venv is rebuilt.
check() {
    "$PY" - <<'EOF' 2>/dev/null
import diffusers, huggingface_hub, numpy, torch, transformers
from diffusers import StableDiffusionInpaintPipelineLegacy  # noqa: F401
assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
assert diffusers.__version__ == "0.11.1", diffusers.__version__
assert transformers.__version__.startswith("4.40."), transformers.__version__
assert huggingface_hub.__version__.startswith("0.23."), huggingface_hub.__version__
assert int(numpy.__version__.split(".")[0]) < 2, numpy.__version__
EOF
}

if [ -x "$PY" ] && check; then
    echo "study venv: $VENV is up to date"
    exit 0
fi

# Quiet pip, minus the warnings this machine's extra local indexes print for every
# package they lack; the whole log on failure.
pip_install() {
    local log
    log=$(mktemp)
    if ! "$PY" -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    grep -v "is ignored: it is neither a file nor a directory" "$log" || true
    rm -f "$log"
}

echo "study venv: building $VENV"
python3 -m venv --clear "$VENV"  # --clear: a stale or half-built venv starts over
# Never part of the repository (the repo's .gitignore names .venv/ only).
echo '*' >"$VENV/.gitignore"

pip_install "torch==2.13.0"
TORCH_VERSION=$("$PY" -c 'from importlib.metadata import version; print(version("torch"))')
echo "study venv: torch $TORCH_VERSION"
CONSTRAINTS="$VENV/study-constraints.txt"
echo "torch==$TORCH_VERSION" >"$CONSTRAINTS"

pip_install -c "$CONSTRAINTS" \
    "diffusers==0.11.1" \
    "transformers==4.40.*" \
    "huggingface_hub==0.23.*" \
    "accelerate==0.30.*" \
    "numpy<2" \
    pillow \
    safetensors

if ! check; then
    echo "study venv: $VENV does not import the pinned versions after the install" >&2
    exit 1
fi
"$PY" -c 'import diffusers, torch, transformers, huggingface_hub, numpy, accelerate
print("study venv: ready:", ", ".join(f"{m.__name__} {m.__version__}" for m in
      (torch, diffusers, transformers, huggingface_hub, accelerate, numpy)))'

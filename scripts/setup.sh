#!/usr/bin/env bash
# Set up a fresh machine for deltaprompts: Chromium (plotly export) and a virtual env at .venv.
# EXTRAS picks the optional parts (default: all,test = plotly, math, hf (torch CPU pinned), export, test,
# and bpy for the 3-D scenes). Idempotent: reruns are cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=${EXTRAS:-all,test}

have_browser() { command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null; }
if ! have_browser || ! fc-list 2>/dev/null | grep -qi dejavu || ! fc-list 2>/dev/null | grep -qi "noto sans cjk" \
   || ! command -v tesseract >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing chromium and fonts (DejaVu, Noto CJK) with apt-get" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core fonts-noto-cjk tesseract-ocr >/dev/null
  else
    echo "setup: warning: no Chromium found; plotly rendering and its tests need it (Debian: sudo apt-get install chromium)" >&2
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# torch is only needed for the [hf] extra; pin the CPU build here so pip never pulls a multi-GB CUDA one.
case ",$EXTRAS," in *,hf,*|*,all,*) .venv/bin/pip install -q "torch==2.13.0" ;; esac
.venv/bin/pip install -q -e ".[${EXTRAS}]"
# bpy (scene.clevr3d) pins numpy<2 though it renders with numpy 2: install it without its dependencies, on
# the Python 3.11 its wheel is built for; elsewhere scene.clevr3d is listed as unavailable.
case ",$EXTRAS," in *,3d,*|*,all,*)
  if .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    .venv/bin/pip install -q --no-deps "bpy==5.0.1" && .venv/bin/pip install -q zstandard requests
  else
    echo "setup: bpy 5.0.1 needs Python 3.11; scene.clevr3d will be unavailable" >&2
  fi ;;
esac
echo "setup: ready (.venv, extras: ${EXTRAS})" >&2

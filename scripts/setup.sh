#!/usr/bin/env bash
# Set up a fresh machine for deltaprompts: Chromium (plotly export) and a virtual env at .venv.
# EXTRAS picks the optional parts (default: all,test = plotly, math, hf (torch CPU pinned), export, test). Idempotent: reruns are cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=${EXTRAS:-all,test}

have_browser() { command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null; }
if ! have_browser || ! fc-list 2>/dev/null | grep -qi dejavu; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing chromium and fonts with apt-get" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null
  else
    echo "setup: warning: no Chromium found; plotly rendering and its tests need it (Debian: sudo apt-get install chromium)" >&2
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# torch is only needed for the [hf] extra; pin the CPU build here so pip never pulls a multi-GB CUDA one.
case ",$EXTRAS," in *,hf,*|*,all,*) .venv/bin/pip install -q "torch==2.13.0" ;; esac
.venv/bin/pip install -q -e ".[${EXTRAS}]"
echo "setup: ready (.venv, extras: ${EXTRAS})" >&2

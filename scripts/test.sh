#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, then pytest.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# 1. Python packages (torch is pinned to the local CPU wheel; see requirements.txt).
python3 -m pip install -q --disable-pip-version-check -r requirements-dev.txt

# 2. A real browser for the browser tests: Debian's Chromium (Playwright cannot download its own here).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: chromium is not installed and cannot be installed without root; browser tests will be skipped" >&2
  fi
fi

# 3. The tests: offline, CPU.
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 GRADIO_ANALYTICS_ENABLED=False
exec python3 -m pytest "$@"

#!/usr/bin/env bash
# CI: Debian's Chromium and its WebDriver, for tests/test_browser.py (the leaderboard page in a real
# headless browser). Playwright drives /usr/bin/chromium directly; never `playwright install`, which
# downloads its own browser. Idempotent and quiet: does nothing when both are already installed.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
chromium --version 2>/dev/null | head -n 1 || true

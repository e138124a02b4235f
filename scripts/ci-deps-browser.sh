#!/usr/bin/env bash
# Installs the browser that internal/console/browser_test.go drives (through chromedp) to join stages from
# the join page: Debian's chromium at /usr/bin/chromium, which has H.264 (openh264) and Opus built in. The
# test skips when it is missing, except under CI=true, where it fails: so CI runs this first.
set -euo pipefail

sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo

if [ ! -x /usr/bin/chromium ]; then
  echo "ci-deps-browser: installing chromium from Debian"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
echo "ci-deps-browser: $(/usr/bin/chromium --version 2>/dev/null)"

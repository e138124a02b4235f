#!/usr/bin/env bash
# Installs what the recording tests play recordings back with (internal/recording, cmd/openstage
# recording_test.go): Debian's ffmpeg and ffprobe (which also make thumbnails for openstage itself), and
# hls.js from npm, exactly as scripts/clients/hls/package-lock.json pins it, for the headless Chromium
# playback test (Chromium itself: scripts/ci-deps-browser.sh). Those tests skip when a tool is missing,
# except under CI=true, where they fail: so CI runs this first.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  echo "ci-deps-recording: installing ffmpeg from Debian"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
fi
echo "ci-deps-recording: $(ffmpeg -version | head -n 1)"
(cd scripts/clients/hls && npm ci --no-audit --no-fund --loglevel=error)
node -e 'console.log("ci-deps-recording: hls.js", require("./scripts/clients/hls/node_modules/hls.js/package.json").version)'

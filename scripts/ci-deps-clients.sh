#!/usr/bin/env bash
# Installs the third-party clients that cmd/openstage/clients_test.go drives against the real binary:
#   - aiortc for Debian's /usr/bin/python3 (Debian's python3-aiortc; PyPI is not reachable from these
#     machines, and a pyenv or venv python first on the PATH would not see a Debian package anyway);
#   - the AWS SDK for JavaScript v3, exactly as scripts/clients/js/package-lock.json pins it (npm ci: only
#     the npm registry is needed).
# Those tests skip when a client is missing, except under CI=true, where they fail: so CI runs this first.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
apt_install() {
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

if ! /usr/bin/python3 -c 'import aiortc' 2>/dev/null; then
  echo "ci-deps-clients: installing python3-aiortc from Debian"
  apt_install python3-aiortc >/dev/null
fi
/usr/bin/python3 -c 'import aiortc, av; print("ci-deps-clients: aiortc", aiortc.__version__, "with PyAV", av.__version__)'

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  # These machines come with Node.js 20 and npm; Debian's are the fallback.
  echo "ci-deps-clients: installing nodejs and npm from Debian"
  apt_install nodejs npm >/dev/null
fi
echo "ci-deps-clients: node $(node --version), npm $(npm --version 2>/dev/null)"
(cd scripts/clients/js && npm ci --no-audit --no-fund --loglevel=error)
node -e 'console.log("ci-deps-clients: @aws-sdk/client-ivs-realtime", require("./scripts/clients/js/node_modules/@aws-sdk/client-ivs-realtime/package.json").version)'

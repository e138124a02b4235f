#!/usr/bin/env bash
# Installs the S3 server that internal/recording/bucket's tests write to, as they write to a directory:
# versitygw, whose posix backend serves a directory over the S3 protocol. It is built from its Go module
# (the Go module proxy is the only source these machines reach for it) into $(go env GOPATH)/bin, where the
# tests look after the PATH. The tests skip when it is missing, except under CI=true, where they fail: so CI
# runs this first.
set -euo pipefail
cd "$(dirname "$0")/.."

version=v1.8.0
bin="$(go env GOPATH)/bin/versitygw"
if [ ! -x "$bin" ] || ! "$bin" --version >/dev/null 2>&1; then
  echo "ci-deps-s3: building versitygw $version"
  # Outside the module: versitygw's dependencies stay out of openstage's go.mod.
  (cd / && GOBIN="$(dirname "$bin")" go install "github.com/versity/versitygw/cmd/versitygw@$version")
fi
# versitygw --version says "git" for a module build; the module version is in the binary's build info.
echo "ci-deps-s3: $bin, $(go version -m "$bin" | awk '$1 == "mod" { print $2, $3 }')"

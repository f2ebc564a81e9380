#!/bin/sh
# Builds the runtime tree the container image ships: compiles with dev dependencies in SRC, then
# assembles OUT with dist/, the default config and production dependencies only.
# The Dockerfile runs this; so does test/e2e/container.test.ts, in a clean temporary copy, so the
# image's build and start path is exercised on machines without a Docker engine.
#   usage: scripts/container-build.sh SRC OUT
set -eu
src=$(cd "$1" && pwd)
out=$2
npm_flags="--no-audit --no-fund --loglevel=error"

cd "$src"
npm ci --ignore-scripts $npm_flags   # no `prepare` build here: the next line is the build
npm run build   # tsc, and the WebAssembly modules: keyword scan and fingerprint tokenizer (asc)

mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -rf "$out/dist" "$out/node_modules"
cp -R dist package.json package-lock.json "$out/"
mkdir -p "$out/config" "$out/certs" "$out/logs"
cp config/aigate.yaml config/logrotate.conf "$out/config/"
cd "$out"
npm ci --omit=dev --ignore-scripts $npm_flags
# Source maps stay (stack traces name real files); the compiled tests and benches never existed here.
echo "container-build: runtime tree ready in $out"

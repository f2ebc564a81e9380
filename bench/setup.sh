#!/usr/bin/env bash
# Installs what `npm run bench` needs besides node: nginx (fake upstream and the reverse proxy
# aigate is compared with), wrk (load generator) and redis-server (S4), from Debian's packages.
# Run as root (or with sudo). CI does not run the benchmark, so .ci/run does not call this.
set -euo pipefail
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -eq 0 ]; then
  echo "bench/setup.sh: nginx, wrk and redis-server are already installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "bench/setup.sh: installing ${need[*]} (apt-get)"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The bench starts its own nginx instances on free loopback ports with their own configs; a
# system nginx the package may have started is left alone.
echo "bench/setup.sh: done ($(nginx -v 2>&1), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(redis-server --version | cut -d' ' -f1-3))"

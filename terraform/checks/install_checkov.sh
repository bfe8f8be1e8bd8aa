#!/usr/bin/env bash
# Create (once) the isolated venv that runs checkov for the offline Terraform checks (tests/infra).
# checkov cannot live in the project's .venv: it pins packaging==23.2 and ships its own HCL parser (bc-python-hcl2,
# same import name as python-hcl2). The venv is rebuilt when checkov-requirements.txt changes.
#
#   terraform/checks/install_checkov.sh [VENV_DIR]     (default: .local/tools/checkov-venv)
#
# Prints the path of the checkov executable on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${1:-$repo/.local/tools/checkov-venv}"
requirements="$here/checkov-requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"

if [ -x "$venv/bin/checkov" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$venv/bin/checkov"
  exit 0
fi

python="${PYTHON:-python3}"
mkdir -p "$(dirname "$venv")"
# One installer at a time (parallel test sessions); the loser waits, then finds the venv ready.
exec 9>"$venv.lock"
flock 9
if [ -x "$venv/bin/checkov" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$venv/bin/checkov"
  exit 0
fi
rm -rf "$venv"
echo "install_checkov: creating $venv (about 30 s)" >&2
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements" >&2
"$venv/bin/pip" check >&2
echo "$want" >"$stamp"
echo "$venv/bin/checkov"

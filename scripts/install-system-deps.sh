#!/usr/bin/env bash
# Install the system programs flowviz needs, when missing, on Debian/Ubuntu.
# Usage: scripts/install-system-deps.sh [run|test]
#   run:  tshark (decoding), Chromium (PNG/PDF exports of the web UI and `flowviz ladder`)
#   test: the same, plus plantuml (renders the PlantUML export) and poppler-utils (pdftotext reads the
#         text of redacted PDFs); the tests drive Chromium for real
set -euo pipefail

need=()
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v editcap >/dev/null 2>&1 || need+=(tshark)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ "${1:-run}" = test ]; then  # the PlantUML export is rendered by plantuml.jar in the tests
  command -v plantuml >/dev/null 2>&1 || need+=(plantuml)
  command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
fi
[ ${#need[@]} -eq 0 ] && exit 0
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)

if ! command -v apt-get >/dev/null 2>&1; then
  echo "flowviz needs: ${need[*]} - install these packages with your system's package manager, then retry." >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo"
  else
    echo "flowviz needs: ${need[*]} - run: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
echo "Installing system packages: ${need[*]}" >&2
echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

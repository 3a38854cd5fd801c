#!/usr/bin/env bash
# Tools the test suite uses when it can get them, from the npm registry (best effort: a test that
# needs a missing tool says so and skips). Installed under .tools/ in the project, never globally.
#   mermaid-cli: renders the Mermaid ladder export with the system Chromium (no browser download).
set -u
cd "$(dirname "$0")/.."
mmdc=.tools/mermaid/node_modules/.bin/mmdc
if [ ! -x "$mmdc" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "Installing mermaid-cli for the Mermaid render test (.tools/mermaid)" >&2
    mkdir -p .tools/mermaid
    if ! PUPPETEER_SKIP_DOWNLOAD=1 npm install --silent --no-audit --no-fund --prefix .tools/mermaid \
         @mermaid-js/mermaid-cli@11 >.tools/mermaid/install.log 2>&1; then
      echo "warning: mermaid-cli could not be installed (see .tools/mermaid/install.log); its test will skip" >&2
    fi
  else
    echo "warning: npm is missing, so mermaid-cli is not installed; the Mermaid render test will skip" >&2
  fi
fi
exit 0

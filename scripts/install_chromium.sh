#!/usr/bin/env bash
# Installs Debian's Chromium and its WebDriver, which the report tests drive through Selenium.
# Idempotent: does nothing when /usr/bin/chromium and /usr/bin/chromedriver already exist.
# Needs root (or sudo) and access to the Debian package mirrors.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    echo "chromium and chromedriver already installed: $(/usr/bin/chromium --version)"
    exit 0
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then
    as_root=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update
"${as_root[@]}" apt-get install -y chromium chromium-driver
echo "installed: $(/usr/bin/chromium --version); $(/usr/bin/chromedriver --version)"

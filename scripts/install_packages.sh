#!/usr/bin/env bash
# Installs the Debian packages that are missing: those named on the command
# line, else scripts/debian-packages.txt and Node.js's npm. Nothing is asked
# of apt when everything is there. sudo only when not root.
#
#   bash scripts/install_packages.sh [PACKAGE...]
set -euo pipefail
list=$(cd "$(dirname "$0")" && pwd)/debian-packages.txt

if [ $# -gt 0 ]; then
  wanted=("$@")
  with_npm=0
else
  # One name a line; '#' starts a comment.
  mapfile -t wanted < <(sed -e 's/#.*//' "$list" | tr -s ' \t' '\n' | sed '/^$/d')
  with_npm=1
fi

missing=()
for p in "${wanted[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done
# Machines of this kind have NodeSource's nodejs, which bundles npm and
# conflicts with Debian's npm package: Debian's only when there is no npm.
if [ $with_npm = 1 ] && ! command -v npm > /dev/null; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_packages: all ${#wanted[@]} Debian packages present$([ $with_npm = 1 ] && echo ', and npm'); apt not needed"
  exit 0
fi
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo > /dev/null || { echo "install_packages: not root and no sudo: install ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
echo "install_packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq || { echo "install_packages: apt-get update failed" >&2; exit 1; }
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null ||
  { echo "install_packages: apt-get install ${missing[*]} failed" >&2; exit 1; }
echo "install_packages: installed ${#missing[@]} package(s)"

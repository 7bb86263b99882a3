#!/usr/bin/env bash
# Prints the version local packs get: <Version of Directory.Build.props>-local.<commits>.g<short commit>, e.g. 0.2.0-local.412.g1a2b3c4.
# SemVer orders prerelease parts numerically, so a later commit's pack is newer; every such version sorts below the release
# <Version> itself, which is reserved for the package published on nuget.org.
set -euo pipefail
cd "$(dirname "$0")/.."
base=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props | head -1)
[[ -n $base ]] || { echo "no <Version> in Directory.Build.props" >&2; exit 1; }
echo "$base-local.$(git rev-list --count HEAD).g$(git rev-parse --short=7 HEAD)"

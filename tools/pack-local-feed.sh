#!/usr/bin/env bash
# Packs every GemmaScope package (the libraries and the gemmascope tool) at the repository's version into a local folder feed,
# default artifacts/feed. Samples, the notebook and the CLI tests restore from it as a user restores from nuget.org:
#   bash tools/pack-local-feed.sh            # -> artifacts/feed/GemmaScope.*.0.2.0.nupkg
#   dotnet run samples/quickstart.cs         # samples/nuget.config adds ../artifacts/feed as a source
# Outside the repository: dotnet nuget add source /path/to/artifacts/feed -n gemmascope-local
set -euo pipefail
cd "$(dirname "$0")/.."
feed=$(realpath -m "${1:-artifacts/feed}")
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props | head -1)
[[ -n $version ]] || { echo "no <Version> in Directory.Build.props" >&2; exit 1; }
rm -rf "$feed"
mkdir -p "$feed"
dotnet pack packages.slnf -c Release -o "$feed" -p:Version="$version" ${PACK_NO_BUILD:+--no-build} -nologo -clp:ErrorsOnly
# The local packages reuse the version number the published ones have: drop them from NuGet's global packages folder, where an
# older pack (or the published package) of the same version would otherwise be used instead of what was just packed.
global=$(dotnet nuget locals global-packages --list | sed 's/^[^:]*: *//')
for nupkg in "$feed"/*.nupkg; do
  name=$(basename "$nupkg" ".$version.nupkg")
  rm -rf "$global/${name,,}/$version"
done
echo "packed $(ls "$feed"/*.nupkg | wc -l) packages, version $version, into $feed"

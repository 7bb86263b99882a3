#!/usr/bin/env bash
# Packs every GemmaScope package (the libraries and the gemmascope tool) into a local folder feed, default artifacts/feed,
# at a version of its own: <Version>-local.<commit count>.g<commit>, e.g. 0.2.0-local.412.g1a2b3c4 (written to FEED/VERSION).
# A local pack never takes the version a published package has (or will have), so NuGet's global packages folder can never
# serve one in place of the other, and two commits' packs never share a version. Samples and the notebook ask for
# "<Version>-*" (the newest local pack, or the published release once there is one); the CLI tests install FEED/VERSION.
#   bash tools/pack-local-feed.sh            # -> artifacts/feed/GemmaScope.*.0.2.0-local.N.gHASH.nupkg
#   dotnet run samples/quickstart.cs         # samples/nuget.config adds ../artifacts/feed as a source
# In your own project (its nuget.config only, never the user-wide one):
#   dotnet new nugetconfig && dotnet nuget add source /path/to/artifacts/feed -n gemmascope-local --configfile nuget.config
set -euo pipefail
cd "$(dirname "$0")/.."
feed=$(realpath -m "${1:-artifacts/feed}")
version=$(bash tools/local-version.sh)
rm -rf "$feed"
mkdir -p "$feed"
dotnet pack packages.slnf -c Release -o "$feed" -p:Version="$version" ${PACK_NO_BUILD:+--no-build} -nologo -clp:ErrorsOnly
echo "$version" > "$feed/VERSION"
# Uncommitted changes pack under the commit's version again: drop that version from NuGet's global packages folder, where the
# earlier pack would otherwise be used instead of what was just packed.
global=$(dotnet nuget locals global-packages --list | sed 's/^[^:]*: *//')
for nupkg in "$feed"/*.nupkg; do
  name=$(basename "$nupkg" ".$version.nupkg")
  rm -rf "$global/${name,,}/$version"
done
echo "packed $(ls "$feed"/*.nupkg | wc -l) packages, version $version, into $feed"

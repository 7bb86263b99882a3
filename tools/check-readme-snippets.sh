#!/usr/bin/env bash
# Compiles the README snippets verbatim, as a user's console app would: every ```csharp block right after a line
# "<!-- compile -->" in README.md and src/*/README.md becomes the Program.cs of a fresh console app (outside the repository,
# so none of its build settings apply) that references the packed packages from the local feed at their version (FEED/VERSION).
#   bash tools/check-readme-snippets.sh [FEED]      (FEED defaults to artifacts/feed; run tools/pack-local-feed.sh first)
# Prints "snippet ok: FILE:LINE" or "snippet FAILED: FILE:LINE" (with the compiler's errors) per block; exits 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
feed=$(realpath "${1:-artifacts/feed}")
version=$(cat "$feed/VERSION")   # written by tools/pack-local-feed.sh: the local packs' own version
work=$(mktemp -d "${TMPDIR:-/tmp}/gemmascope-snippets.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat > "$work/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML
# Empty build files: nothing above the snippet apps may change how they build.
echo '<Project />' > "$work/Directory.Build.props"
echo '<Project />' > "$work/Directory.Build.targets"
echo '<Project><PropertyGroup><ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally></PropertyGroup></Project>' > "$work/Directory.Packages.props"

n=0; failed=0
mkdir -p "$work/extract"
for readme in README.md src/*/README.md; do
  # One file per marked block, named after the README and the line its code starts on.
  awk -v dir="$work/extract" -v name="${readme//\//_}" '
    /^<!-- compile -->[[:space:]]*$/ { marked = 1; next }
    marked && /^```csharp[[:space:]]*$/ { inblock = 1; marked = 0; file = dir "/" name ":" NR + 1; printf "" > file; next }
    inblock && /^```[[:space:]]*$/ { inblock = 0; close(file); next }
    inblock { print >> file; next }
    { marked = 0 }' "$readme"
done

for snippet in "$work"/extract/*; do
  [[ -f $snippet ]] || continue
  n=$((n + 1))
  label=$(basename "$snippet"); label=${label//_//}
  app="$work/app$n"
  mkdir -p "$app"
  cp "$snippet" "$app/Program.cs"
  cat > "$app/app.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <ImplicitUsings>enable</ImplicitUsings>
    <Nullable>enable</Nullable>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="GemmaScope.Onnx" Version="$version" />
    <PackageReference Include="GemmaScope.Hf" Version="$version" />
  </ItemGroup>
</Project>
XML
  if out=$(dotnet build "$app/app.csproj" -nologo -clp:ErrorsOnly 2>&1); then
    echo "snippet ok: $label"
  else
    echo "snippet FAILED: $label"
    grep -E "error" <<<"$out" | sed "s|$app/||" | sort -u | head -20
    failed=$((failed + 1))
  fi
done
if ((n == 0)); then echo "no <!-- compile --> snippets found"; exit 1; fi
echo "$((n - failed)) snippets compiled, $failed failed"
((failed == 0))

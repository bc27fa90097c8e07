#!/usr/bin/env bash
# Vendor the 360-degree viewer that `pano360 report` pages use into
# src/pano360/viz/report/data/vendor/: Photo Sphere Viewer 5 (core, markers plugin, video plugin,
# equirectangular video adapter) and three.js, all MIT, as published on npm. Files are copied
# unchanged from the `npm pack` tarballs (their CommonJS builds, which pano360 wraps at report time
# so the page works from file://, where ES modules do not load) with each package's LICENSE, and
# their sha256 are written to VENDOR.md. Needs npm and network access to the npm registry; never
# run at report time. Run from the repository root:
#
#     tools/vendor_viewer.sh
set -euo pipefail

PSV=5.15.1
THREE=0.185.1
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/src/pano360/viz/report/data/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# name in vendor/ | npm package | files to keep (paths inside the tarball's package/)
PACKAGES=(
  "three|three@$THREE|build/three.cjs LICENSE"
  "psv-core|@photo-sphere-viewer/core@$PSV|index.cjs index.css LICENSE"
  "psv-markers-plugin|@photo-sphere-viewer/markers-plugin@$PSV|index.cjs index.css LICENSE"
  "psv-video-plugin|@photo-sphere-viewer/video-plugin@$PSV|index.cjs index.css LICENSE"
  "psv-equirectangular-video-adapter|@photo-sphere-viewer/equirectangular-video-adapter@$PSV|index.cjs LICENSE"
)

rm -rf "$DEST"
mkdir -p "$DEST"
{
  echo "# Vendored viewer (made by tools/vendor_viewer.sh; do not edit)"
  echo
  echo "Copied unchanged from the npm registry's tarballs (\`npm pack\`). All are MIT-licensed;"
  echo "each folder holds its package's LICENSE. \`pano360 report\` wraps the CommonJS builds into"
  echo "one classic script (viewer/viewer.js in a report), so a report opens from file://."
  echo
  echo "| folder | npm package | tarball sha512 (npm integrity) |"
  echo "|---|---|---|"
} > "$DEST/VENDOR.md"
SUMS=""
for entry in "${PACKAGES[@]}"; do
  IFS="|" read -r name spec files <<< "$entry"
  (cd "$WORK" && npm pack --silent --json "$spec" > "$name.json")
  tarball="$WORK/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["filename"])' "$WORK/$name.json")"
  integrity="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["integrity"])' "$WORK/$name.json")"
  mkdir -p "$WORK/$name" "$DEST/$name"
  tar xzf "$tarball" -C "$WORK/$name"
  for f in $files; do
    cp "$WORK/$name/package/$f" "$DEST/$name/$(basename "$f")"
  done
  echo "| $name | \`$spec\` | \`$integrity\` |" >> "$DEST/VENDOR.md"
  SUMS+="$(cd "$DEST" && sha256sum "$name"/*)"$'\n'
done
{
  echo
  echo "sha256 of the files kept:"
  echo
  echo '```'
  printf "%s" "$SUMS"
  echo '```'
} >> "$DEST/VENDOR.md"
echo "vendored into $DEST"

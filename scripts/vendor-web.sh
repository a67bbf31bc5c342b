#!/usr/bin/env bash
# Refresh the pages' vendored third-party scripts in central/web/vendor/ from the npm registry.
#
# The pages must work on a plant LAN with no internet, so nothing is loaded from a CDN: the files
# are committed, with their licence, and this script is how they got there (docs/pages.md,
# "Vendored scripts"). It needs `npm` (Debian: apt-get install npm) and the registry, and checks
# the files against the sha256 sums below, so a refresh cannot change them silently. To move to a
# new version, change VERSION, run it with --update-sums, review the diff, and commit.
#
#   scripts/vendor-web.sh                 # fetch, check, copy
#   scripts/vendor-web.sh --update-sums   # after changing a version: print the new sums
set -euo pipefail

cd "$(dirname "$0")/.."
DEST=central/web/vendor
JSQR_VERSION=1.4.0  # jsQR: QR decoder for browsers without BarcodeDetector (Apache-2.0)
JSQR_SHA256=bc40c8a15196236b2314db0856f72ca0b49980cd5413b8c852a7349f5fee0859

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "jsqr@${JSQR_VERSION}" >/dev/null && tar xzf "jsqr-${JSQR_VERSION}.tgz")
sum=$(sha256sum "$work/package/dist/jsQR.js" | cut -d' ' -f1)
if [[ "${1:-}" == "--update-sums" ]]; then
  echo "JSQR_SHA256=$sum"
  exit 0
fi
if [[ "$sum" != "$JSQR_SHA256" ]]; then
  echo "jsqr ${JSQR_VERSION}: sha256 $sum, expected $JSQR_SHA256 (run with --update-sums after a version change)" >&2
  exit 1
fi
mkdir -p "$DEST"
cp "$work/package/dist/jsQR.js" "$DEST/jsqr.js"
cp "$work/package/LICENSE" "$DEST/jsqr-license.txt"
echo "vendored jsqr ${JSQR_VERSION} into $DEST (sha256 $sum)"

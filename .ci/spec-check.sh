#!/usr/bin/env bash
# .ci/spec-check.sh: the tests validate every body against Klaviyo's OpenAPI subset, which
# is never copied into this repository: it lives beside it, in ../shared (or wherever
# KLAVIYO_OPENAPI points). Without it, `npm test` stops here with one line, before
# installing anything. (`npm run demo` runs without it, not validating.)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
spec="${KLAVIYO_OPENAPI:-$ROOT/../shared/klaviyo-openapi/klaviyo-openapi-subset.json}"
if [ ! -f "$spec" ]; then
  echo "npm test needs Klaviyo's OpenAPI subset: none at $spec (clone beside ../shared, or set KLAVIYO_OPENAPI=<path to klaviyo-openapi-subset.json>)" >&2
  exit 1
fi

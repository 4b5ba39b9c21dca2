#!/usr/bin/env bash
# The system packages the test suite needs, installed when missing (run by `npm test` through npm's pretest, and so
# by .ci/run). Idempotent: when everything is there it only checks, in well under a second.
#   chromium              the web page's browser test (playwright-core drives /usr/bin/chromium)
#   redis-server          the shared job queue's tests start their own redis-server
#   strace                test/no-network.test.ts watches a local generate's sockets (no DNS, no connection)
#   Mesa >= 25 lavapipe   the WebGPU tests run on lavapipe (Vulkan on the CPU): mesa-vulkan-drivers and libvulkan1
#                         from bookworm-backports (bookworm itself has Mesa 22)
# ffmpeg is not installed: the optional npm dependency @ffmpeg-installer/ffmpeg (and @ffprobe-installer/ffprobe)
# covers the tests and the CLI when the machine has none.
# Needs Debian (apt-get), root or sudo, and network access to the Debian mirror. SVD_SKIP_TEST_SETUP=1 skips it.
set -euo pipefail

if [ "${SVD_SKIP_TEST_SETUP:-}" = 1 ]; then exit 0; fi

MESA_MIN=25
missing=()        # packages from the release itself
backports=()      # packages from bookworm-backports

[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v strace >/dev/null 2>&1 || missing+=(strace)

mesa_major() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | sed -E 's/^([0-9]+:)?([0-9]+).*/\2/'; }
lavapipe_ok() {
  local major
  major=$(mesa_major || true)
  [ -n "$major" ] && [ "$major" -ge "$MESA_MIN" ] && ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 &&
    dpkg-query -W -f='${Status}' libvulkan1 2>/dev/null | grep -q 'install ok installed'
}
lavapipe_ok || backports+=(mesa-vulkan-drivers libvulkan1)

if [ ${#missing[@]} -eq 0 ] && [ ${#backports[@]} -eq 0 ]; then exit 0; fi

want="${missing[*]} ${backports[*]}"
fail() {
  echo "setup-test-deps: $1" >&2
  echo "setup-test-deps: the tests need these system packages: ${want# }" >&2
  echo "setup-test-deps: on Debian 12 run this script as root (\`sudo bash scripts/setup-test-deps.sh\`)," \
    "or install them yourself (mesa-vulkan-drivers and libvulkan1 from bookworm-backports, Mesa >= $MESA_MIN)." >&2
  exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "apt-get not found (this script installs on Debian 12 only)"
if [ "$(id -u)" = 0 ]; then
  as_root() { env DEBIAN_FRONTEND=noninteractive "$@"; }
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root() { sudo -n env DEBIAN_FRONTEND=noninteractive "$@"; }
else
  fail "not root, and sudo is not available without a password"
fi

# bookworm-backports, on the same mirror as the machine's own Debian sources, unless some source already has it
if [ ${#backports[@]} -gt 0 ] && ! grep -rqs 'bookworm-backports' ${APT_ETC:-/etc/apt}/sources.list ${APT_ETC:-/etc/apt}/sources.list.d/; then
  # deb822 stanzas (paragraph mode): the URI of one whose Suites list plain `bookworm`
  mirror=$(cat "${APT_ETC:-/etc/apt}"/sources.list.d/*.sources 2>/dev/null | awk -v RS= '
    /(^|\n)Suites:([^\n]* )?bookworm( |\n|$)/ && match($0, /(^|\n)URIs:[ \t]*[^ \t\n]+/) {
      u = substr($0, RSTART, RLENGTH); sub(/^\n?URIs:[ \t]*/, "", u); print u; exit }' || true)
  if [ -z "$mirror" ]; then
    mirror=$(sed -nE 's/^deb\s+(\[[^]]*\]\s+)?(\S+)\s+bookworm\s.*/\2/p' ${APT_ETC:-/etc/apt}/sources.list 2>/dev/null | head -n1 || true)
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "setup-test-deps: adding bookworm-backports from $mirror"
  printf '%s\n' 'Types: deb' "URIs: $mirror" 'Suites: bookworm-backports' 'Components: main' \
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' | as_root tee ${APT_ETC:-/etc/apt}/sources.list.d/backports.sources >/dev/null
fi

echo "setup-test-deps: installing ${want# }"
as_root apt-get update -qq || fail "apt-get update failed (no network access to the Debian mirror?)"
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || fail "apt-get install ${missing[*]} failed"
fi
if [ ${#backports[@]} -gt 0 ]; then
  as_root apt-get install -y -qq --no-install-recommends -t bookworm-backports "${backports[@]}" >/dev/null ||
    fail "apt-get install -t bookworm-backports ${backports[*]} failed"
  lavapipe_ok || fail "mesa-vulkan-drivers is installed but is not Mesa >= $MESA_MIN with lavapipe"
fi
echo "setup-test-deps: done"

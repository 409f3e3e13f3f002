# Shared apt helpers for .ci/setup.sh and .ci/engines.sh (sourced; the caller defines `log`).
# Installs only what is missing, as root or with passwordless sudo; KW_SKIP_APT=1 never runs apt.

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

SUDO=()
can_apt() {
  [ "${KW_SKIP_APT:-0}" = 1 ] && return 1
  command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1 || return 1
  if [ "$(id -u)" -eq 0 ]; then SUDO=(); return 0; fi
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=(sudo -n); return 0; fi
  return 1
}

APT_UPDATED=0
apt_install() { # apt_install PKG... — installs those not yet installed; returns 1 if it cannot
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  can_apt || return 1
  local aptopts=(-y -q -o DPkg::Lock::Timeout=900 -o Dpkg::Options::=--force-confold)
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${aptopts[@]}" update >/dev/null
    APT_UPDATED=1
  fi
  log "apt-get install ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${aptopts[@]}" install "${missing[@]}" >/dev/null
}

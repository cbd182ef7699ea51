#!/usr/bin/env bash
# open3d needs libusb-1.0 (and libGL / libEGL / libgomp) from the system. Install them when
# missing and we are root on Debian/Ubuntu; otherwise say what to install.
set -euo pipefail
missing=()
have() { ldconfig -p 2>/dev/null | grep -q "$1"; }
have "libusb-1.0.so.0" || missing+=(libusb-1.0-0)
have "libGL.so.1"      || missing+=(libgl1)
have "libEGL.so.1"     || missing+=(libegl1)
have "libgomp.so.1"    || missing+=(libgomp1)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages for open3d: ${missing[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "xmodal: open3d needs these system packages: ${missing[*]}" >&2
  echo "        install them (e.g. 'sudo apt-get install ${missing[*]}') and run make again." >&2
  exit 1
fi

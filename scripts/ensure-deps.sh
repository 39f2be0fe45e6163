#!/usr/bin/env bash
# Installs what `make demo` and `make test` need that this machine lacks,
# or says exactly what to install. Usage: scripts/ensure-deps.sh PROGRAM...
# where each PROGRAM is one of: go espeak-ng redis-server kamailio baresip sox lame
# (sox and lame write the WAV, FLAC and MP3 files the audio tests decode)
# (kamailio and baresip are the real SIP peers of the interop/ tests;
# baresip-core is baresip without its GTK, X11 and video front-ends).
set -euo pipefail

declare -A package=( [espeak-ng]=espeak-ng [redis-server]=redis-server
                     [kamailio]=kamailio [baresip]=baresip-core
                     [sox]=sox [lame]=lame )
missing=()
for prog in "$@"; do
  command -v "$prog" >/dev/null 2>&1 && continue
  # kamailio installs to /usr/sbin, often not on a non-root PATH.
  [ -x "/usr/sbin/$prog" ] && continue
  if [ "$prog" = go ]; then
    echo "Go is not installed: install Go 1.26 or newer (https://go.dev/doc/install) and put it on PATH." >&2
    exit 1
  fi
  missing+=("${package[$prog]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "missing: ${missing[*]}. Install it with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

#!/usr/bin/env bash
# Prepare a fresh Debian/Ubuntu machine for `make test` or `make demo`.
#
# Creates .venv with the project and its dev extra, and makes sure every system program the
# tests or the demo use is installed: apt-get when running as root, otherwise one line saying
# what to install. Safe to run again: each step is skipped when already done.
#
# usage: scripts/setup.sh test|demo
set -euo pipefail

purpose="${1:-test}"
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

# --- system packages -------------------------------------------------------------------
# "program:debian-package" pairs; programs are looked up in PATH and in the sbin folders,
# where Debian puts daemons such as mosquitto.
case "$purpose" in
  test) wanted="mosquitto:mosquitto mosquitto_passwd:mosquitto victoria-metrics:victoria-metrics chromium:chromium"
        # a CJK font, so that the browser tests' screenshots of Chinese pages are readable
        wanted_files="/usr/share/fonts/truetype/wqy/wqy-microhei.ttc:fonts-wqy-microhei" ;;
  demo) wanted="mosquitto:mosquitto"; wanted_files="" ;;
  *) say "unknown purpose '$purpose' (expected test or demo)"; exit 2 ;;
esac

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

missing=""
for pair in $wanted; do
  prog="${pair%%:*}"; pkg="${pair##*:}"
  if ! have "$prog"; then
    case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
  fi
done
for pair in $wanted_files; do
  file="${pair%%:*}"; pkg="${pair##*:}"
  [ -e "$file" ] || missing="$missing $pkg"
done

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have empty package lists: update only when the first try fails.
  apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "$@" >/dev/null; }
}

if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    say "installing system packages:$missing"
    apt_install $missing
  else
    say "missing system packages:$missing -- install them with: sudo apt-get install -y$missing"
    exit 1
  fi
fi

# The packaged mosquitto service is not needed: tests and the demo start private brokers.

# --- Python virtual environment --------------------------------------------------------
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  say "plantpulse needs Python 3.11 or newer as '$python' (set PYTHON=/path/to/python3.11)"
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  if ! "$python" -m venv .venv >/dev/null 2>&1; then
    rm -rf .venv
    ver="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      say "installing python${ver}-venv (needed to create .venv)"
      apt_install "python${ver}-venv" || apt_install python3-venv
      "$python" -m venv .venv
    else
      say "cannot create .venv: install it with: sudo apt-get install -y python${ver}-venv"
      exit 1
    fi
  fi
fi

stamp=.venv/.plantpulse-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing plantpulse and its dev extra into .venv (first run takes a minute)"
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  touch "$stamp"
fi

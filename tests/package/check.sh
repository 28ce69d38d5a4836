#!/usr/bin/env bash
# Builds the gavel Debian package from the debug build (`cargo deb --no-build --profile
# dev`; a release package is `cargo deb`), installs it with dpkg -i and checks what it
# installed: the binary's version, the unit (systemd-analyze verify), and node-1 started
# from the packaged configuration as user gavel, answering /readyz and the control API
# with the token the package wrote. Then purges the package: the binary, the unit and
# the token go, /var/lib/gavel stays. Needs root and Debian's dpkg; leaves the machine
# as it found it (the user and data directory this run made are removed).
# Usage: tests/package/check.sh  (from anywhere; after `cargo build --locked`)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

PACKAGE_DIR="$(mktemp -d)"
PACKAGE="$PACKAGE_DIR/gavel.deb"
READY_TIMEOUT_S=60
NODE_LOG="$PACKAGE_DIR/node-1.log"
node_pid=""
made_user=0
made_data=0

fail() { echo "package check FAILED: $*" >&2; exit 1; }

cleanup() {
    if [ -n "$node_pid" ]; then kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
    if dpkg-query --show --showformat='${Status}' gavel 2>/dev/null | grep -q "installed"; then
        dpkg --purge gavel >/dev/null || true
    fi
    if [ "$made_data" -eq 1 ]; then rm -rf /var/lib/gavel; fi
    if [ "$made_user" -eq 1 ] && getent passwd gavel >/dev/null; then userdel gavel 2>/dev/null || true; fi
    getent group gavel >/dev/null && [ "$made_user" -eq 1 ] && groupdel gavel 2>/dev/null || true
    rm -rf "$PACKAGE_DIR"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || fail "needs root (dpkg -i)"
if dpkg-query --show gavel >/dev/null 2>&1; then fail "a gavel package is already installed here"; fi
getent passwd gavel >/dev/null || made_user=1
[ -e /var/lib/gavel ] || made_data=1

echo "--- cargo deb --no-build --profile dev"
cargo deb --locked --no-build --profile dev --output "$PACKAGE" 2>&1 | grep -v "dev profile is not supported\|enable debug symbols" || true
[ -s "$PACKAGE" ] || fail "cargo deb made no package"
dpkg-deb --info "$PACKAGE" | sed -n '/Package:/,/Depends:/p'

echo "--- dpkg -i"
dpkg -i "$PACKAGE"
for path in /usr/bin/gavel /lib/systemd/system/gavel@.service /etc/gavel/node-1.toml /etc/gavel/node-1.env \
    /usr/share/doc/gavel/examples/node.toml /usr/share/doc/gavel/README.md; do
    [ -e "$path" ] || fail "$path is not installed"
done
[ "$(stat -c '%a %G' /etc/gavel/node-1.toml)" = "640 gavel" ] || fail "/etc/gavel/node-1.toml is not 0640 group gavel"
[ "$(stat -c '%a %U' /etc/gavel/node-1.env)" = "600 root" ] || fail "/etc/gavel/node-1.env is not 0600 root"
[ "$(stat -c '%U' /var/lib/gavel)" = "gavel" ] || fail "/var/lib/gavel is not owned by gavel"

echo "--- gavel --version"
expected="gavel $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
actual="$(/usr/bin/gavel --version)"
[ "$actual" = "$expected" ] || fail "gavel --version printed '$actual', not '$expected'"
echo "$actual"

echo "--- systemd-analyze verify gavel@node-1.service"
verify_output="$(systemd-analyze verify /lib/systemd/system/gavel@node-1.service 2>&1)" \
    || fail "systemd-analyze verify: $verify_output"
[ -z "$verify_output" ] || fail "systemd-analyze verify: $verify_output"
echo "unit verified"

echo "--- node-1 from the packaged configuration, as user gavel"
set -a; . /etc/gavel/node-1.env; set +a
[ "${#GAVEL_ADMIN_TOKEN}" -ge 16 ] || fail "the package's admin token is shorter than 16 characters"
runuser -u gavel -- env GAVEL_ADMIN_TOKEN="$GAVEL_ADMIN_TOKEN" \
    /usr/bin/gavel serve --config /etc/gavel/node-1.toml >"$NODE_LOG" 2>&1 &
node_pid=$!
deadline=$((SECONDS + READY_TIMEOUT_S))
until curl -fsS http://127.0.0.1:8081/readyz >/dev/null 2>&1; do
    kill -0 "$node_pid" 2>/dev/null || { cat "$NODE_LOG" >&2; fail "node-1 exited before it was ready"; }
    [ "$SECONDS" -lt "$deadline" ] || { cat "$NODE_LOG" >&2; fail "node-1 not ready within ${READY_TIMEOUT_S} s"; }
    sleep 0.5
done
curl -fsS -H "Authorization: Bearer $GAVEL_ADMIN_TOKEN" http://127.0.0.1:9081/control/v1/node >/dev/null \
    || fail "the control API refused the package's admin token"
[ -d /var/lib/gavel/node-1 ] || fail "node-1 wrote no data under /var/lib/gavel/node-1"
kill "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=""
echo "node-1 served and stopped"

echo "--- dpkg --purge gavel"
dpkg --purge gavel
for path in /usr/bin/gavel /lib/systemd/system/gavel@.service /etc/gavel/node-1.toml /etc/gavel/node-1.env; do
    [ ! -e "$path" ] || fail "$path is still there after purge"
done
[ -d /var/lib/gavel/node-1 ] || fail "purge removed the node's records under /var/lib/gavel"
echo "package check passed"

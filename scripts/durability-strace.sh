#!/usr/bin/env bash
# Shows that every committed command reaches the disk: runs one Gavel node under
# `strace -f -c`, commits BIDS bids (plus 7 setup commands) over HTTP, and prints the
# count of fdatasync calls next to the count of commits. Needs strace (apt-get install
# strace) and a built binary (cargo build --release). Loopback only.
set -euo pipefail
BIDS=${BIDS:-100}
BINARY=${BINARY:-target/release/gavel}
WORK=$(mktemp -d)
trap 'pkill -INT -f "gavel serve --config $WORK/gavel.toml" 2>/dev/null || true; sleep 1; rm -rf "$WORK"' EXIT
TOKEN=durability-admin-token-0123456789
cat > "$WORK/gavel.toml" <<TOML
[node]
id = 1
data_dir = "$WORK/data"
[listen]
public = "127.0.0.1:18481"
control = "127.0.0.1:19481"
peer = "127.0.0.1:17481"
[security]
admin_token = "$TOKEN"
[janitor]
interval_ms = 3600000
TOML
strace -f -c -e trace=fdatasync,fsync,sync_file_range -o "$WORK/strace.txt" \
  "$BINARY" serve --config "$WORK/gavel.toml" > "$WORK/node.log" 2>&1 &
C=http://127.0.0.1:19481; P=http://127.0.0.1:18481
for _ in $(seq 1 100); do curl -sf "$P/readyz" > /dev/null && break; sleep 0.1; done
post() { curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' "$@"; }
now=$(date +%s%3N)
for b in a b; do post -H "Authorization: Bearer $TOKEN" -d "{\"bidder_id\":\"$b\",\"name\":\"$b\",\"secret\":\"secret-$b-1\"}" $C/control/v1/bidders > /dev/null; done
post -H "Authorization: Bearer $TOKEN" -d "{\"id\":\"d1\",\"title\":\"Durability\",\"start_price\":100,\"increment\":1,\"listing_opens_at_ms\":$now,\"listing_closes_at_ms\":$((now+3600000)),\"countdown_ms\":60000}" $C/control/v1/auctions > /dev/null
for b in a b; do post -H "Authorization: Bearer $TOKEN" -d "{\"bidder_id\":\"$b\"}" $C/control/v1/auctions/d1/qualifications > /dev/null; done
token() { curl -s -H 'content-type: application/json' -d "{\"bidder_id\":\"$1\",\"secret\":\"secret-$1-1\"}" $P/api/v1/sessions | sed 's/.*"token":"\([^"]*\)".*/\1/'; }
TA=$(token a); TB=$(token b)
ok=0
for i in $(seq 1 "$BIDS"); do
  if [ $((i % 2)) = 1 ]; then t=$TA; else t=$TB; fi
  [ "$(post -H "Authorization: Bearer $t" -d "{\"amount\":$((99 + i)),\"request_id\":\"r$i\"}" $P/api/v1/auctions/d1/bids)" = 201 ] && ok=$((ok + 1))
done
pkill -INT -f "gavel serve --config $WORK/gavel.toml"; sleep 2
echo "committed: $ok bids + 7 setup commands (2 bidders, 1 auction, 2 qualifications, 2 sessions)"
cat "$WORK/strace.txt"

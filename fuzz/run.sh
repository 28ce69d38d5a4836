#!/usr/bin/env bash
# Fuzzes the peer protocol's decoders (fuzz_targets/peer_protocol.rs) for SECONDS
# (default 60) with cargo-fuzz (`cargo install cargo-fuzz --locked`). cargo-fuzz needs
# nightly compiler flags: on a stable toolchain RUSTC_BOOTSTRAP=1 allows them. Prints
# libFuzzer's figures; a crash leaves its input in fuzz/artifacts/peer_protocol/ and
# fails the run (replay it with `fuzz/run.sh 0 ARTIFACT`).
set -euo pipefail

SECONDS_TO_RUN="${1:-60}"
cd "$(dirname "${BASH_SOURCE[0]}")"

command -v cargo-fuzz >/dev/null || { echo "no cargo-fuzz: cargo install cargo-fuzz --locked" >&2; exit 2; }
if ! rustc --version | grep -q nightly; then export RUSTC_BOOTSTRAP=1; fi

if [ "$#" -ge 2 ]; then
    exec cargo fuzz run peer_protocol "$2"
fi
mkdir -p corpus/peer_protocol
# -rss_limit_mb: the process stays under 1 GiB (AddressSanitizer's own share included);
# -malloc_limit_mb: no single allocation over 8 MiB, although a frame may announce up to
# 16 MiB: memory must follow the bytes that arrive, not the lengths announced; -max_len:
# inputs up to 64 KiB.
cargo fuzz run peer_protocol corpus/peer_protocol -- \
    -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=1024 -malloc_limit_mb=8 \
    -max_len=65536 -print_final_stats=1

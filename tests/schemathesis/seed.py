"""Seeds a fresh Gavel node for the schemathesis run: a bidder, an open auction it is
qualified for, and a session. Prints the session token on stdout.

Usage: seed.py PUBLIC_URL CONTROL_URL ADMIN_TOKEN
"""

import json
import sys
import time
import urllib.error
import urllib.request


def call(url, body=None, token=None, method=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def expect(answer, statuses, what):
    status, body = answer
    if status not in statuses:
        sys.exit(f"seeding failed: {what} answered {status}: {body}")
    return body


def main():
    public_url, control_url, admin_token = sys.argv[1:4]
    now_ms = int(time.time() * 1000)
    bidder = {"bidder_id": "fuzz-bidder", "name": "Fuzz Bidder", "secret": "fuzz-bidder-secret"}
    expect(call(f"{control_url}/control/v1/bidders", bidder, admin_token), {201}, "register bidder")
    auction = {
        "id": "lot-1",
        "title": "Parcel for the schemathesis run",
        "parcel": {"area_m2": 1000},
        "start_price": 1000,
        "increment": 10,
        "listing_opens_at_ms": now_ms,
        "listing_closes_at_ms": now_ms + 3_600_000,
        "countdown_ms": 60_000,
    }
    expect(call(f"{control_url}/control/v1/auctions", auction, admin_token), {201}, "create auction")
    expect(
        call(f"{control_url}/control/v1/auctions/lot-1/qualifications", {"bidder_id": "fuzz-bidder"}, admin_token),
        {201},
        "qualify",
    )
    session = expect(
        call(f"{public_url}/api/v1/sessions", {"bidder_id": "fuzz-bidder", "secret": "fuzz-bidder-secret"}),
        {201},
        "open session",
    )
    print(session["token"])


if __name__ == "__main__":
    main()

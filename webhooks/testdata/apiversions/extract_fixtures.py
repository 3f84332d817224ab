#!/usr/bin/env python3
"""Extract, from Stripe's published OpenAPI fixtures (openapi/fixtures3.json
of github.com/stripe/openapi, generated from the specification), the
customer, subscription, invoice, checkout session and test clock objects of
each API version into fixtures/<version>.json here.

The repository's full specifications of these versions were not available
offline; its fixtures were. A version's fixtures are taken from the last
commit that changed fixtures3.json from a week before the version's release
to a week before the next one's (Stripe publishes a specification up to a
week before its release), so from that version's specification.

Usage: extract_fixtures.py REPO_GIT_DIR COMMITS_FILE
COMMITS_FILE: lines "ISO-DATE COMMIT" of the commits that changed
openapi/fixtures3.json and whose blob is present.
"""
import json, subprocess, sys

# Every API version since 2023-10-16, as Stripe released them.
VERSIONS = ["2023-10-16", "2024-04-10", "2024-06-20", "2024-09-30.acacia", "2024-10-28.acacia",
            "2024-11-20.acacia", "2024-12-18.acacia", "2025-01-27.acacia", "2025-02-24.acacia",
            "2025-03-31.basil", "2025-04-30.basil", "2025-05-28.basil", "2025-06-30.basil",
            "2025-07-30.basil", "2025-08-27.basil", "2025-09-30.clover", "2025-10-29.clover",
            "2025-11-17.clover", "2025-12-15.clover", "2026-01-28.clover", "2026-02-25.clover",
            "2026-03-25.dahlia", "2026-04-22.dahlia", "2026-05-27.dahlia", "2026-06-24.dahlia",
            "2026-07-29.dahlia", "2026-08-26.dahlia"]
RESOURCES = ["customer", "subscription", "subscription_item", "invoice", "checkout.session", "test_helpers.test_clock"]

def week_before(day):
    import datetime
    return (datetime.date.fromisoformat(day) - datetime.timedelta(days=7)).isoformat()

def main():
    repo, commits_file = sys.argv[1], sys.argv[2]
    commits = sorted(l.split() for l in open(commits_file) if l.strip())
    for i, v in enumerate(VERSIONS):
        start = v[:10]
        # Stripe publishes a version's specification up to a week before
        # its release date: stop a week before the next one, and start
        # there too.
        nxt = week_before(VERSIONS[i + 1][:10]) if i + 1 < len(VERSIONS) else "9999"
        cands = [c for c in commits if c[0][:10] < nxt and c[0][:10] >= week_before(start)]
        if not cands:
            print(v, "no fixtures commit in range; skipped")
            continue
        date, h = cands[-1]
        raw = subprocess.run(["git", "-C", repo, "show", h + ":openapi/fixtures3.json"], capture_output=True, check=True).stdout
        res = json.loads(raw)["resources"]
        out = {"version": v, "source": "github.com/stripe/openapi openapi/fixtures3.json at %s (%s)" % (h, date[:10]),
               "objects": {r: res[r] for r in RESOURCES if r in res}}
        json.dump(out, open("fixtures/%s.json" % v, "w"), indent=0, separators=(",", ":"), sort_keys=True)
        print(v, h[:10], date[:10], sorted(out["objects"]))

main()

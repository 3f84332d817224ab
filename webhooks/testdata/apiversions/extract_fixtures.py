#!/usr/bin/env python3
"""Extract, for every API version since 2023-10-16, the shapes of the
objects billingd's webhook decoders read from Stripe's published OpenAPI
fixtures (openapi/fixtures3.json of github.com/stripe/openapi, generated
from the specification of the same commit) into fixtures/<version>.json.

Which commit is which version: the full specifications (openapi/spec3.*)
are over 4 MiB and were not at hand, so their info.version could not be
read directly. github.com/stripe/stripe-node generates its ApiVersion
(src/apiVersion.ts) from that info.version and records the stripe/openapi
tag it generated from (OPENAPI_VERSION): a version's shapes are taken from
the first stripe/openapi tag whose specification stripe-node read as that
version. The release notes of the stripe/openapi tags (the enum of
WebhookEndpoint#create.api_version) are checked against that list; any
difference is printed.

What is kept is a shape, not Stripe's data: every string becomes "", every
integer 0, every other number 0.5; keys, nesting, arrays, booleans and
nulls (a nullable field the fixture left null) stay as published.
apiversions_test.go fills the strings with fake personal data.

A version whose fixtures lack an object (Entitlements before 2024-06-20)
borrows it from the first later version that has it: Stripe renders an
object newer than an endpoint's version in the shape it was first
published in. The file says so ("borrowed").

Usage: extract_fixtures.py STRIPE_OPENAPI_GIT_DIR STRIPE_NODE_GIT_DIR
"""
import json, re, subprocess, sys

FIRST = "2023-10-16"
RESOURCES = ["customer", "subscription", "subscription_item", "invoice", "checkout.session",
             "test_helpers.test_clock", "subscription_schedule",
             "entitlements.active_entitlement_summary", "entitlements.active_entitlement"]

def git(repo, *args):
    return subprocess.run(["git", "-C", repo] + list(args), capture_output=True, check=True, text=True).stdout

def node_versions(node):
    """ApiVersion -> (first stripe/openapi tag, stripe-node commit)."""
    out = {}
    for line in git(node, "log", "--format=%H", "--", "OPENAPI_VERSION", "src/apiVersion.ts").split():
        try:
            tag = git(node, "show", line + ":OPENAPI_VERSION").strip()
            src = git(node, "show", line + ":src/apiVersion.ts")
        except subprocess.CalledProcessError:
            continue
        m = re.search(r"ApiVersion = '([^']+)'", src)
        if not m or not re.fullmatch(r"v\d+", tag):
            continue
        v = m.group(1)
        if v not in out or int(tag[1:]) < int(out[v][0][1:]):
            out[v] = (tag, line)
    return {v: t for v, t in out.items() if v >= FIRST}

def released(openapi):
    """Versions the stripe/openapi release notes added and did not remove
    later (2024-04-03 was added and withdrawn; 2024-12-18.acacia withdrawn
    and added again)."""
    out = set()
    notes = git(openapi, "for-each-ref", "--sort=creatordate", "--format=%(contents)", "refs/tags")
    for verb, vals in re.findall(r"(Add support for new values?|Remove support for values?) (.*?) (?:on|from) enums? `WebhookEndpoint#create.api_version`", notes):
        for v in re.findall(r"`([^`]+)`", vals):
            (out.add if verb.startswith("Add") else out.discard)(v)
    return {v for v in out if v >= FIRST}

def shape(v):
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, str):
        return ""
    if isinstance(v, int):
        return 0
    if isinstance(v, float):
        return 0.5
    if isinstance(v, list):
        return [shape(x) for x in v]
    return {k: shape(x) for k, x in v.items()}

def main():
    openapi, node = sys.argv[1], sys.argv[2]
    versions = node_versions(node)
    rel = released(openapi)
    for v in sorted(rel - set(versions)):
        print("released per the stripe/openapi notes, never a stripe-node ApiVersion:", v)
    for v in sorted(set(versions) - rel):
        print("a stripe-node ApiVersion the stripe/openapi notes never added:", v)
    docs = []
    for v in sorted(versions):
        tag, node_commit = versions[v]
        commit = git(openapi, "rev-parse", tag + "^{commit}").strip()
        date = git(openapi, "log", "-1", "--format=%cs", commit).strip()
        res = json.loads(git(openapi, "show", commit + ":openapi/fixtures3.json"))["resources"]
        regen = git(openapi, "log", "-1", "--format=%H %cs", commit, "--", "openapi/fixtures3.json").split()
        docs.append({"version": v,
                     "source": "github.com/stripe/openapi openapi/fixtures3.json at %s (tag %s, %s; the fixtures last "
                               "regenerated at %s, %s); info.version %s per github.com/stripe/stripe-node "
                               "src/apiVersion.ts at %s (OPENAPI_VERSION %s)"
                               % (commit, tag, date, regen[0], regen[1], v, node_commit, tag),
                     "objects": {r: shape(res[r]) for r in RESOURCES if r in res}})
    for i, d in enumerate(docs):
        for r in RESOURCES:
            if r in d["objects"]:
                continue
            later = next((x for x in docs[i + 1:] if r in x["objects"]), None)
            if later:
                d["objects"][r] = later["objects"][r]
                d.setdefault("borrowed", {})[r] = later["version"] + " (first published shape)"
        json.dump(d, open("fixtures/%s.json" % d["version"], "w"), indent=0, separators=(",", ":"), sort_keys=True)
        print(d["version"], d["source"][:80], sorted(d.get("borrowed", {})))

main()

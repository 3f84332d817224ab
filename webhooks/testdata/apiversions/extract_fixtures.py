#!/usr/bin/env python3
"""Extract, for every API version since 2023-10-16, the shapes of the
objects billingd's webhook decoders read from Stripe's published OpenAPI
fixtures (openapi/fixtures3.json of github.com/stripe/openapi, generated
from the specification of the same commit) into fixtures/<version>.json.

Which commit is which version: the full specifications (openapi/spec3.*)
are over 4 MiB and were not at hand, so their info.version could not be
read directly. github.com/stripe/stripe-node generates its ApiVersion
(src/apiVersion.ts) from that info.version and records the stripe/openapi
tag it generated from (OPENAPI_VERSION). A version's shapes are the
fixtures as of the last tag stripe-node read as that version: the latest
regeneration of its era. A regeneration is committed just before the
specification commit it was generated with (its run); the file says where
that run lies ("generated"): at or after the first tag stripe-node read as
the version, or between the last tag it read as the previous version and
the first it read as this one, at or after the tag whose release notes add
the version to the webhook endpoints' API versions. A run no later than
the previous version's last tag stops the script.

The version list is checked against the versions the stripe/openapi
release notes add to (and do not later withdraw from) the enum of
WebhookEndpoint#create.api_version; any difference is printed.

What is kept is a shape, not Stripe's data: every string becomes "", every
integer 0, every other number 0.5; keys, nesting, arrays, booleans and
nulls (a nullable field the fixture left null) stay as published.
apiversions_test.go fills the strings with fake personal data.

A version whose fixtures lack an object (Entitlements before 2024-04-10)
borrows it from the first later version that has it, on the assumption
that Stripe renders an object newer than an endpoint's version in the
shape it was first published in. The file says so ("borrowed").

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
    """ApiVersion -> [(stripe/openapi tag, stripe-node commit)], tags in
    order: every tag stripe-node generated that version from."""
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
        out.setdefault(m.group(1), []).append((tag, line))
    return {v: sorted(set(t), key=lambda x: int(x[0][1:])) for v, t in out.items()}

def released_in(openapi):
    """Version -> the first tag whose release notes add it to the enum."""
    out = {}
    notes = git(openapi, "for-each-ref", "--sort=creatordate", "--format=%(refname:short)|%(contents)", "refs/tags")
    for block in re.split(r"\n(?=v\d+\|)", notes):
        tag = block.split("|")[0]
        for vals in re.findall(r"Add support for new values? (.*?) on enums? `WebhookEndpoint#create.api_version`", block):
            for v in re.findall(r"`([^`]+)`", vals):
                out.setdefault(v, tag)
    return out

def is_ancestor(repo, a, b):
    return subprocess.run(["git", "-C", repo, "merge-base", "--is-ancestor", a, b]).returncode == 0

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
    allv = node_versions(node)
    versions = {v: t for v, t in allv.items() if v >= FIRST}
    rel = released(openapi)
    intro = released_in(openapi)
    for v in sorted(rel - set(versions)):
        print("released per the stripe/openapi notes, never a stripe-node ApiVersion:", v)
    for v in sorted(set(versions) - rel):
        print("a stripe-node ApiVersion the stripe/openapi notes never added:", v)
    docs = []
    ordered = sorted(allv)
    for v in sorted(versions):
        # The fixtures as of the last tag stripe-node read as v: the
        # latest generation of v's era. A regeneration is committed just
        # before the specification commit it was generated with (its
        # "run"); where that run lies says which specification it was.
        first, (tag, node_commit) = allv[v][0][0], allv[v][-1]
        prev = ordered[ordered.index(v) - 1]
        prev_last = allv[prev][-1][0]
        commit = git(openapi, "rev-parse", tag + "^{commit}").strip()
        date = git(openapi, "log", "-1", "--format=%cs", commit).strip()
        res = json.loads(git(openapi, "show", commit + ":openapi/fixtures3.json"))["resources"]
        regen, rdate = git(openapi, "log", "-1", "--format=%H %cs", commit, "--", "openapi/fixtures3.json").split()
        run = (git(openapi, "rev-list", "--first-parent", "--reverse", regen + ".." + commit).split() or [commit])[0]
        if is_ancestor(openapi, first + "^{commit}", run):
            how = "generated with the specification at %s, at or after tag %s, which stripe-node read as %s" % (run, first, v)
        elif is_ancestor(openapi, run, prev_last + "^{commit}"):
            sys.exit("%s: the fixtures at %s were generated before the last tag stripe-node read as %s" % (v, tag, prev))
        else:
            how = ("generated with the specification at %s: after tag %s (the last stripe-node read as %s), before tag "
                   "%s (the first it read as %s), %s tag %s, whose release notes add %s to the webhook endpoints' API versions"
                   % (run, prev_last, prev, first, v, "at or after" if is_ancestor(openapi, intro[v] + "^{commit}", run) else "BEFORE", intro[v], v))
        docs.append({"version": v,
                     "source": "github.com/stripe/openapi openapi/fixtures3.json at %s (tag %s, %s), regenerated at %s (%s); "
                               "info.version per github.com/stripe/stripe-node src/apiVersion.ts at %s (OPENAPI_VERSION %s)"
                               % (commit, tag, date, regen, rdate, node_commit, tag),
                     "generated": how,
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

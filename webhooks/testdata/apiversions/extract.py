#!/usr/bin/env python3
"""Extract, from one of Stripe's published OpenAPI specifications, the
schemas of the objects billingd's webhook decoders read (customer,
subscription, invoice, checkout.session, test_helpers.test_clock) and the
schemas they reference up to MAX_DEPTH, into <version>.json here.
apiversions_test.go builds each version's fixtures from these files.

An object the specification has no schema for (the active entitlement
summary, an event-only object, is in neither stripe-mock's specification
nor the one of 2023-08-16, which predates Entitlements) is taken, as a
shape (extract_fixtures.py), from OBJECTS: a fixtures3.json of the same
release, or a fixtures/<version>.json here when the version predates the
object (Stripe renders it in the shape it was first published in). The
file names the source ("objects_source") and what was borrowed.

Usage: extract.py SPEC(.json|.yaml) [SOURCE-NOTE [OBJECTS OBJECTS-NOTE [borrowed]]]
"""
import json, sys

ROOTS = ["customer", "subscription", "invoice", "checkout.session", "test_helpers.test_clock",
         "subscription_schedule"]
# Objects read from OBJECTS when the specification has no schema of them.
OBJECTS = ["entitlements.active_entitlement_summary", "entitlements.active_entitlement"]
# The nested schemas whose fields the decoders read; every other reference
# is cut (the generator fills it with fake personal data or null).
NESTED = ["subscription_item", "price", "recurring", "plan", "transform_quantity", "transform_usage",
          "billing_bill_resource_invoicing_parents_invoice_parent",
          "billing_bill_resource_invoicing_parents_invoice_subscription_parent",
          "subscription_schedule_phase_configuration", "subscription_schedule_configuration_item"]
KEEP = ["type", "nullable", "enum", "properties", "items", "anyOf", "oneOf", "allOf",
        "additionalProperties", "$ref", "format", "maxLength"]

def load(path):
    if path.endswith(".json"):
        return json.load(open(path))
    import yaml
    return yaml.safe_load(open(path))

def shape(v):
    """A published fixture object's shape (as extract_fixtures.py keeps it)."""
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
    spec = load(sys.argv[1])
    note = sys.argv[2] if len(sys.argv) > 2 else sys.argv[1]
    schemas = spec["components"]["schemas"]
    out, depth = {}, {r: 0 for r in ROOTS}
    queue = list(ROOTS)

    def trim(s, d):
        if isinstance(s, list):
            return [trim(x, d) for x in s]
        if not isinstance(s, dict):
            return s
        t = {}
        for k, v in s.items():
            if k not in KEEP:
                continue
            if k == "$ref":
                name = v.split("/")[-1]
                if (name in ROOTS or name in NESTED) and name in schemas:
                    if name not in depth:
                        depth[name] = d + 1
                        queue.append(name)
                    t["$ref"] = name
                else:
                    t["x-cut"] = name
            elif k == "properties":
                t[k] = {p: trim(ps, d) for p, ps in sorted(v.items())}
            else:
                t[k] = trim(v, d)
        return t

    while queue:
        name = queue.pop(0)
        out[name] = trim(schemas[name], depth[name])
    doc = {"version": spec["info"]["version"], "source": note, "schemas": dict(sorted(out.items()))}
    if len(sys.argv) > 4:
        src = json.load(open(sys.argv[3]))
        objs = src.get("resources") or src.get("objects")
        doc["objects"] = {o: shape(objs[o]) for o in OBJECTS if o not in out and o in objs}
        doc["objects_source"] = sys.argv[4]
        if len(sys.argv) > 5 and sys.argv[5] == "borrowed":
            doc["borrowed"] = {o: sys.argv[4] for o in doc["objects"]}
    path = spec["info"]["version"].split(";")[0] + ".json"
    json.dump(doc, open(path, "w"), indent=0, separators=(",", ":"))
    print(path, len(out), "schemas")

main()

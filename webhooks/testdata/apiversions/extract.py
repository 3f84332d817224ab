#!/usr/bin/env python3
"""Extract, from one of Stripe's published OpenAPI specifications, the
schemas of the objects billingd's webhook decoders read (customer,
subscription, invoice, checkout.session, test_helpers.test_clock) and the
schemas they reference up to MAX_DEPTH, into <version>.json here.
apiversions_test.go builds each version's fixtures from these files.

Usage: extract.py SPEC(.json|.yaml) [SOURCE-NOTE]
"""
import json, sys

ROOTS = ["customer", "subscription", "invoice", "checkout.session", "test_helpers.test_clock"]
# The nested schemas whose fields the decoders read; every other reference
# is cut (the generator fills it with fake personal data or null).
NESTED = ["subscription_item", "price", "recurring", "plan", "transform_quantity", "transform_usage",
          "billing_bill_resource_invoicing_parents_invoice_parent",
          "billing_bill_resource_invoicing_parents_invoice_subscription_parent"]
KEEP = ["type", "nullable", "enum", "properties", "items", "anyOf", "oneOf", "allOf",
        "additionalProperties", "$ref", "format", "maxLength"]

def load(path):
    if path.endswith(".json"):
        return json.load(open(path))
    import yaml
    return yaml.safe_load(open(path))

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
    path = spec["info"]["version"].split(";")[0] + ".json"
    json.dump(doc, open(path, "w"), indent=0, separators=(",", ":"))
    print(path, len(out), "schemas")

main()

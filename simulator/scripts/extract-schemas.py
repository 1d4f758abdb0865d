#!/usr/bin/env python3
"""Extract the response schemas the simulator's conformance tests check against.

Reads the official, public API descriptions from SPECS_DIR and writes the subset the tests need
to simulator/tests/schemas/, so the tests need no download at run time. SPECS_DIR holds:
- powerbi-swagger.json: Microsoft's Power BI REST API swagger
  (https://github.com/microsoft/PowerBI-CSharp, sdk/swaggers/swagger.json);
- xero-identity.yaml: Xero's identity OpenAPI description
  (https://github.com/XeroAPI/Xero-OpenAPI, xero-identity.yaml).

Usage (from the repository root or anywhere):
    python3 simulator/scripts/extract-schemas.py SPECS_DIR

Needs PyYAML. Re-run it when the descriptions change and commit the output.
"""

import json
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
if len(sys.argv) != 2:
    sys.exit("usage: extract-schemas.py SPECS_DIR (see the docstring for what it holds)")
SPECS = sys.argv[1]
OUT = os.path.join(HERE, "..", "tests", "schemas")

# Power BI operations the simulator serves: operationId -> the responses the tests check.
POWERBI_OPERATIONS = [
    "Datasets_GetDatasetsInGroup",
    "Datasets_GetDatasetInGroup",
    "Datasets_GetRefreshHistoryInGroup",
    "Datasets_RefreshDatasetInGroup",
    "Datasets_GetRefreshScheduleInGroup",
    "Datasets_UpdateRefreshScheduleInGroup",
    "Datasets_GetDatasourcesInGroup",
    "Gateways_UpdateDatasource",
    "Datasets_TakeOverInGroup",
]

# Keys that only document; dropped to keep the committed files small.
DOC_KEYS = {"description", "example", "examples", "x-ms-enum", "x-ms-examples", "externalDocs",
            "x-is-datetime", "x-php-format", "readOnly"}


def strip(node):
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "properties" and isinstance(v, dict):
                # Property names are data, not keywords: keep e.g. a property called "description".
                out[k] = {name: strip(schema) for name, schema in v.items()}
            elif k not in DOC_KEYS:
                out[k] = strip(v)
        return out
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v.rsplit("/", 1)[-1]
            else:
                yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


def closure(roots, definitions):
    seen, todo = {}, list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = strip(definitions[name])
        todo.extend(refs(definitions[name]))
    return dict(sorted(seen.items()))


def powerbi():
    with open(os.path.join(SPECS, "powerbi-swagger.json"), encoding="utf-8") as f:
        spec = json.load(f)
    operations = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId") in POWERBI_OPERATIONS:
                responses = {code: strip(r.get("schema")) for code, r in op["responses"].items()}
                headers = {code: sorted(r.get("headers", {})) for code, r in op["responses"].items()}
                body = [strip(p["schema"]) for p in op.get("parameters", []) if p.get("in") == "body"]
                operations[op["operationId"]] = {
                    "method": method.upper(),
                    "path": path,
                    "responses": responses,
                    "responseHeaders": headers,
                    "requestBody": body[0] if body else None,
                }
    missing = set(POWERBI_OPERATIONS) - set(operations)
    if missing:
        sys.exit(f"operations not found in the swagger: {sorted(missing)}")
    roots = set(refs(operations))
    return {
        "_origin": "Extracted by simulator/scripts/extract-schemas.py from powerbi-swagger.json: "
                   "microsoft/PowerBI-CSharp sdk/swaggers/swagger.json (master @ db37499a, 2024-10-15). "
                   "Documentation keys removed; schemas otherwise unchanged.",
        "operations": dict(sorted(operations.items())),
        "definitions": closure(roots, spec["definitions"]),
    }


def xero():
    with open(os.path.join(SPECS, "xero-identity.yaml"), encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    get = spec["paths"]["/Connections"]["get"]
    schema = get["responses"]["200"]["content"]["application/json"]["schema"]
    return {
        "_origin": "Extracted by simulator/scripts/extract-schemas.py from xero-identity.yaml: "
                   "XeroAPI/Xero-OpenAPI xero-identity.yaml @ e952d0bd (version 16.1.0). "
                   "Documentation keys removed; schemas otherwise unchanged.",
        "operations": {
            "getConnections": {"method": "GET", "path": "/Connections", "responses": {"200": strip(schema)}},
        },
        "definitions": closure(set(refs(schema)) | {"AccessToken"}, spec["components"]["schemas"]),
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, doc in (("powerbi.json", powerbi()), ("xero-identity.json", xero())):
        path = os.path.join(OUT, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, sort_keys=False)
            f.write("\n")
        print(f"wrote {os.path.relpath(path)}")


if __name__ == "__main__":
    main()

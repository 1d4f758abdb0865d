#!/usr/bin/env python3
"""Writes the krew plugin manifest for `kubectl xero` (krew's Plugin, v1alpha2) to stdout.

The release runs it over the archives it attaches (xero-operator-VERSION-linux-ARCH.tar.gz,
each holding the static binary and LICENSE): one platform per archive, with its download URL
and SHA-256. krew links the binary as `kubectl-xero`, and the binary, started under that name,
is the kubectl plugin (`kubectl xero status NAME`, `kubectl xero refresh NAME --wait`, ...).

Usage: hack/krew-manifest.py --version V --url BASE ARCHIVE...
"""

import argparse
import hashlib
import os
import re
import sys

HOMEPAGE = "https://github.com/xero-operator/xero-operator"
SHORT = "Check, refresh and sign in XeroDatasets"
DESCRIPTION = """\
The command line of xero-operator, which keeps Power BI datasets built on Xero
data refreshing. For a XeroDataset in the current namespace:
  kubectl xero status NAME          conditions, refreshes, recovery, events
  kubectl xero check NAME           every link of the chain checked now
  kubectl xero refresh NAME --wait  one refresh now, and its outcome
  kubectl xero xero-login --secret SECRET
                                    sign in to Xero and store the refresh token
"""
CAVEATS = """\
Needs xero-operator running in the cluster (see its README) and, for
xero-login, a browser. Reads and writes only what your kubeconfig allows.
"""


def platform(path, base_url, version):
    name = os.path.basename(path)
    found = re.fullmatch(rf"xero-operator-{re.escape(version)}-(linux)-(amd64|arm64)\.tar\.gz", name)
    if not found:
        sys.exit(f"krew-manifest.py: {name} is not xero-operator-{version}-linux-(amd64|arm64).tar.gz")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    os_, arch = found.groups()
    return (
        f"  - selector:\n"
        f"      matchLabels:\n"
        f"        os: {os_}\n"
        f"        arch: {arch}\n"
        f"    uri: {base_url.rstrip('/')}/{name}\n"
        f"    sha256: {digest}\n"
        f"    files:\n"
        f"      - from: xero-operator\n"
        f"        to: .\n"
        f"      - from: LICENSE\n"
        f"        to: .\n"
        f"    bin: xero-operator\n"
    )


def indented(text, spaces):
    return "".join(" " * spaces + line + "\n" for line in text.splitlines())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="X.Y.Z, without the v")
    parser.add_argument("--url", required=True, help="where the release's files are downloaded from")
    parser.add_argument("archives", nargs="+")
    args = parser.parse_args()
    if not re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", args.version):
        sys.exit(f"krew-manifest.py: {args.version} is not a semantic version (X.Y.Z)")
    platforms = sorted(platform(path, args.url, args.version) for path in args.archives)
    if len(set(p.split("uri:")[0] for p in platforms)) != len(platforms):
        sys.exit("krew-manifest.py: two archives for one platform")
    sys.stdout.write(
        "apiVersion: krew.googlecontainertools.github.com/v1alpha2\n"
        "kind: Plugin\n"
        "metadata:\n"
        "  name: xero\n"
        "spec:\n"
        f"  version: v{args.version}\n"
        f"  homepage: {HOMEPAGE}\n"
        f"  shortDescription: {SHORT}\n"
        "  description: |\n"
        + indented(DESCRIPTION, 4)
        + "  caveats: |\n"
        + indented(CAVEATS, 4)
        + "  platforms:\n"
        + "".join(platforms)
    )


if __name__ == "__main__":
    main()

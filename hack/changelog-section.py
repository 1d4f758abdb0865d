#!/usr/bin/env python3
"""Prints the section of CHANGELOG.md for one version (the GitHub release's text).

Usage: hack/changelog-section.py VERSION
Fails when CHANGELOG.md has no "## [VERSION]" heading or the section is empty: a release says
what changed.
"""

import os
import sys


def section(text, version):
    lines = text.splitlines()
    heading = f"## [{version}]"
    starts = [i for i, line in enumerate(lines) if line.startswith(heading)]
    if not starts:
        return None
    body = []
    for line in lines[starts[0] + 1:]:
        if line.startswith("## "):
            break
        body.append(line)
    return "\n".join(body).strip()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: hack/changelog-section.py VERSION")
    version = sys.argv[1]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "CHANGELOG.md")
    with open(path, encoding="utf-8") as f:
        found = section(f.read(), version)
    if not found:
        sys.exit(f"changelog-section.py: CHANGELOG.md says nothing under ## [{version}]")
    print(found)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Builds the xero-operator container image without a container daemon.

The image is one layer over nothing (like `FROM scratch`): the static binary, the CA bundle it
verifies Power BI, Entra ID and Xero with, and /etc/passwd and /etc/group entries for the
non-root user. It is written straight in the OCI image layout (a directory with `oci-layout`,
`index.json` and content-addressed blobs), and archived as a tar that holds the same layout plus
Docker's `manifest.json`, so that `docker load`, `kind load image-archive`, `ctr images import`
and `skopeo copy oci-archive:...` all accept it.

Why a script and not a tool: the layout is a few JSON documents and a tar, which the standard
library writes; a tool from the Go module proxy (ko, crane) would add a build of its own and a
dependency to keep current for what is thirty lines of format. Reproducible: every file has the
commit's time, owner 0, fixed modes, sorted entries, and gzip without a timestamp, so two builds
of one commit (on one machine, with one CA bundle) give the same digest.

Usage:
  hack/image.py BINARY OUTDIR --version V --revision R --created EPOCH [--arch A] [--ca-bundle P]
      one platform's image (A: amd64 or arm64, default this machine's); prints a JSON line
      with the manifest digest, the archive and the layout
  hack/image.py index OUTDIR --version V LAYOUT...
      a multi-platform image from single-platform layouts (the release joins its amd64 and arm64
      builds): OUTDIR/oci, an OCI layout whose index lists one manifest per platform, for
      `skopeo copy --all oci:OUTDIR/oci docker://...`; prints its index digest
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import sys
import tarfile

REPOSITORY = "ghcr.io/xero-operator/xero-operator"
USER = "65532:65532"
PASSWD = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
GROUP = "root:x:0:\nnonroot:x:65532:\n"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(binary, ca_bundle, mtime):
    """The root filesystem as an uncompressed tar, entries sorted, metadata fixed."""
    entries = []

    def directory(path):
        info = tarfile.TarInfo(path)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        entries.append((info, None))

    def file(path, data, mode):
        info = tarfile.TarInfo(path)
        info.size = len(data)
        info.mode = mode
        entries.append((info, data))

    for path in ["etc", "etc/ssl", "etc/ssl/certs", "home", "usr", "usr/local", "usr/local/bin"]:
        directory(path)
    home = tarfile.TarInfo("home/nonroot")
    home.type = tarfile.DIRTYPE
    home.mode = 0o700
    home.uid = home.gid = 65532
    entries.append((home, None))
    file("etc/passwd", PASSWD.encode(), 0o644)
    file("etc/group", GROUP.encode(), 0o644)
    with open(ca_bundle, "rb") as f:
        file("etc/ssl/certs/ca-certificates.crt", f.read(), 0o644)
    with open(binary, "rb") as f:
        file("usr/local/bin/xero-operator", f.read(), 0o755)

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in sorted(entries, key=lambda e: e[0].name):
            info.mtime = mtime
            info.uname = info.gname = ""
            if info.name != "home/nonroot":
                info.uid = info.gid = 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def write_layout(layout, files):
    """Writes FILES (name to bytes) as a fresh directory LAYOUT."""
    shutil.rmtree(layout, ignore_errors=True)
    for name, data in files.items():
        path = os.path.join(layout, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return layout


def canonical(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def build(args):
    mtime = int(args.created)
    created = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc)
    created = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    tar = layer(args.binary, args.ca_bundle, mtime)
    compressed = gzip.compress(tar, compresslevel=9, mtime=0)
    labels = {
        "org.opencontainers.image.title": "xero-operator",
        "org.opencontainers.image.description": "Kubernetes operator that keeps Power BI datasets built on Xero refreshing",
        "org.opencontainers.image.source": "https://github.com/xero-operator/xero-operator",
        "org.opencontainers.image.version": args.version,
        "org.opencontainers.image.revision": args.revision,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.created": created,
    }
    config = {
        "created": created,
        "architecture": args.arch,
        "os": "linux",
        "config": {
            "User": USER,
            "Entrypoint": ["/usr/local/bin/xero-operator"],
            "Cmd": ["run"],
            "Env": [
                "PATH=/usr/local/bin",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            ],
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]},
        "history": [{"created": created, "created_by": "hack/image.py"}],
    }
    config_blob = canonical(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(config_blob),
            "size": len(config_blob),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": sha256(compressed),
                "size": len(compressed),
            }
        ],
        "annotations": labels,
    }
    manifest_blob = canonical(manifest)
    tag = f"{REPOSITORY}:{args.version}"
    layout_index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256(manifest_blob),
                "size": len(manifest_blob),
                "platform": {"architecture": args.arch, "os": "linux"},
                "annotations": {
                    "org.opencontainers.image.ref.name": args.version,
                    "io.containerd.image.name": tag,
                },
            }
        ],
    }
    docker_manifest = [
        {
            "Config": "blobs/sha256/" + sha256(config_blob)[7:],
            "RepoTags": [tag],
            "Layers": ["blobs/sha256/" + sha256(compressed)[7:]],
        }
    ]

    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": canonical(layout_index),
        "manifest.json": json.dumps(docker_manifest, separators=(",", ":")).encode(),
    }
    for blob in (config_blob, manifest_blob, compressed):
        files["blobs/sha256/" + sha256(blob)[7:]] = blob

    layout = write_layout(os.path.join(args.outdir, "oci"), files)

    archive = os.path.join(args.outdir, f"xero-operator-{args.version}.tar")
    with tarfile.open(archive, mode="w", format=tarfile.PAX_FORMAT) as tar_out:
        names = sorted(set(files) | {"blobs", "blobs/sha256"})
        for name in names:
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            info.uname = info.gname = ""
            if name in files:
                info.size = len(files[name])
                info.mode = 0o644
                tar_out.addfile(info, io.BytesIO(files[name]))
            else:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar_out.addfile(info)
    return sha256(manifest_blob), archive, layout


def index(outdir, version, layouts):
    """One OCI layout whose index lists the image manifest of each single-platform LAYOUT."""
    files = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode()}
    manifests = []
    for layout in layouts:
        with open(os.path.join(layout, "index.json"), "rb") as f:
            found = json.load(f)["manifests"]
        if len(found) != 1 or "platform" not in found[0]:
            sys.exit(f"image.py: {layout} is not a single-platform layout")
        descriptor = dict(found[0])
        platform_ = descriptor["platform"]
        if any(m["platform"] == platform_ for m in manifests):
            sys.exit(f"image.py: two layouts for {platform_['os']}/{platform_['architecture']}")
        descriptor.pop("annotations", None)
        manifests.append(descriptor)
        blobs = os.path.join(layout, "blobs", "sha256")
        for name in sorted(os.listdir(blobs)):
            with open(os.path.join(blobs, name), "rb") as f:
                blob = f.read()
            if sha256(blob) != "sha256:" + name:
                sys.exit(f"image.py: {layout}: blob {name} does not match its digest")
            files["blobs/sha256/" + name] = blob
    manifests.sort(key=lambda m: m["platform"]["architecture"])
    image_index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }
    index_blob = canonical(image_index)
    files["blobs/sha256/" + sha256(index_blob)[7:]] = index_blob
    # The layout's own index.json points at the image index, tagged with the version.
    files["index.json"] = canonical(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "digest": sha256(index_blob),
                    "size": len(index_blob),
                    "annotations": {"org.opencontainers.image.ref.name": version},
                }
            ],
        }
    )
    write_layout(os.path.join(outdir, "oci"), files)
    return sha256(index_blob)


def this_arch():
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "index":
        parser = argparse.ArgumentParser(prog="image.py index")
        parser.add_argument("outdir")
        parser.add_argument("layouts", nargs="+")
        parser.add_argument("--version", required=True)
        args = parser.parse_args(sys.argv[2:])
        os.makedirs(args.outdir, exist_ok=True)
        digest = index(args.outdir, args.version, args.layouts)
        print(json.dumps({"digest": digest, "layout": os.path.join(args.outdir, "oci")}))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("outdir")
    parser.add_argument("--version", required=True)
    parser.add_argument("--revision", required=True)
    parser.add_argument("--created", required=True, help="seconds since the epoch (the commit's time)")
    parser.add_argument("--arch", default=this_arch(), choices=["amd64", "arm64"])
    parser.add_argument("--ca-bundle", default="/etc/ssl/certs/ca-certificates.crt")
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    digest, archive, layout = build(args)
    print(json.dumps({"digest": digest, "archive": archive, "layout": layout}))


if __name__ == "__main__":
    main()

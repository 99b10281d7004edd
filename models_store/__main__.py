"""python -m models_store [--store DIR] list | show NAME[@VERSION] | verify [NAME] | alias NAME ALIAS VERSION
                          | export-triton NAME[@VERSION] --out DIR [--max-batch N]"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .store import DEFAULT_ALIAS, Store, StoreError, default_store_root
from .triton import DEFAULT_MAX_BATCH, export_triton


def _split(ref: str) -> tuple[str, str]:
    name, _, version = ref.partition("@")
    return name, version or DEFAULT_ALIAS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models_store", description=__doc__)
    parser.add_argument("--store", default=None, help=f"store folder (default: $PSF_STORE or {default_store_root()})")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="models, versions and aliases")
    show = sub.add_parser("show", help="print a manifest as JSON")
    show.add_argument("ref", help="NAME or NAME@VERSION or NAME@ALIAS")
    verify = sub.add_parser("verify", help="check every file's sha256")
    verify.add_argument("name", nargs="?")
    alias = sub.add_parser("alias", help="point an alias (e.g. prod) at a version")
    alias.add_argument("name")
    alias.add_argument("alias")
    alias.add_argument("version", type=int)
    triton = sub.add_parser("export-triton", help="write a Triton model repository of one version")
    triton.add_argument("ref", help="NAME or NAME@VERSION or NAME@ALIAS")
    triton.add_argument("--out", required=True, help="model repository folder (created if missing)")
    triton.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                        help=f"max_batch_size of every graph (default {DEFAULT_MAX_BATCH})")
    args = parser.parse_args(argv)
    store = Store(args.store)

    try:
        if args.command == "list":
            models = store.models()
            if not models:
                print(f"no models in {store.root}")
            for name in models:
                aliases = ", ".join(f"{a}->{v}" for a, v in store.aliases(name).items())
                print(f"{name}: versions {store.versions(name)}  aliases {aliases or '-'}")
        elif args.command == "show":
            name, version = _split(args.ref)
            print(store.manifest(name, version, verify=False).model_dump_json(indent=2))
        elif args.command == "verify":
            report = store.verify(args.name)
            print(json.dumps(report, indent=2))
            return 0 if report and all(v == "ok" for v in report.values()) else 1
        elif args.command == "alias":
            store.set_alias(args.name, args.alias, args.version)
            print(f"{args.name}@{args.alias} -> {args.version}")
        elif args.command == "export-triton":
            if args.max_batch < 1:
                raise ValueError(f"--max-batch={args.max_batch} is not allowed: must be at least 1")
            name, version = _split(args.ref)
            for folder in export_triton(store, name, version, Path(args.out), max_batch_size=args.max_batch):
                print(f"wrote {folder}")
    except (StoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

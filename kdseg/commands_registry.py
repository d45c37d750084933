"""Listing commands: ``kdseg methods``, ``kdseg backbones``, ``kdseg inputs``.

Each lists the registry's names with their options (defaults and help generated from the
options dataclasses, :func:`kdseg.options.describe`).
"""

from __future__ import annotations

import argparse
import inspect


def _first_line(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.splitlines()[0] if doc else ""


def methods(args: argparse.Namespace) -> int:
    """Print the registered methods with their inputs, options, defaults and help."""
    from kdseg.methods.base import list_methods, method_class
    from kdseg.options import describe, format_options

    for k, name in enumerate(args.names or list_methods()):
        cls = method_class(name)
        print(("\n" if k else "") + f"{name}: {_first_line(cls)}")
        if cls.requires:
            print(f"  requires: {', '.join(sorted(cls.requires))} (kdseg inputs)")
        print(format_options(describe(cls.Options)))
    return 0


def backbones(args: argparse.Namespace) -> int:
    """Print the registered backbones with their view and arguments."""
    from kdseg.models.registry import BACKBONES, backbone_options, backbone_view, list_backbones
    from kdseg.options import describe, format_options

    for k, name in enumerate(args.names or list_backbones()):
        factory = BACKBONES.get(name)
        print(("\n" if k else "") + f"{name} ({backbone_view(name)}): {_first_line(factory)}")
        docs = describe(backbone_options(name))
        if docs:
            print(format_options(docs))
    return 0


def inputs(args: argparse.Namespace) -> int:
    """Print the registered input providers: what they give, their value and settings."""
    from kdseg.inputs import PROVIDERS
    from kdseg.options import describe, format_options

    for k, name in enumerate(args.names or PROVIDERS.names()):
        cls = PROVIDERS.get(name)
        print(("\n" if k else "") + f"{name}: {cls.help}")
        print(f"  --input {name}={'VALUE' if cls.value_help else ''}", end="")
        print(f"  ({cls.value_help})" if cls.value_help else "  (no value)")
        docs = describe(cls.Settings)
        if docs:
            print("  settings (variants.<v>.inputs." + name + "):")
            print(format_options(docs, indent=4))
    return 0

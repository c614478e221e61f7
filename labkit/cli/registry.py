"""`labkit gates`, `labkit strategies`, `labkit sources`: what is registered, plug-ins included."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel


def cmd_gates(args: argparse.Namespace) -> int:
    from labkit._plugins import origin
    from labkit.gates.registry import registered_gates

    gates: list[dict[str, Any]] = [
        {
            "name": name,
            "order": cls.order,
            "origin": origin(cls),
            "summary": cls.summary(),
            "applies_to": _sides(cls.applies_to),
            "reasons": list(cls.reasons),
            "config": _config_fields(cls.Config, f"gates.{name}"),
        }
        for name, cls in registered_gates().items()
    ]
    if args.json:
        print(json.dumps(gates, indent=1))
        return 0
    for gate in gates:
        print(f"{gate['name']}  (order {gate['order']}, from {gate['origin']})")
        print(f"    {gate['summary']}")
        print(f"    applies to: {', '.join(gate['applies_to'])}")
        print(f"    reasons: {', '.join(gate['reasons']) or '-'}")
        _print_fields(gate["config"], "config")
    return 0


def cmd_strategies(args: argparse.Namespace) -> int:
    from labkit._plugins import origin
    from labkit.strategies.registry import registered_strategies

    strategies: list[dict[str, Any]] = [
        {
            "name": name,
            "origin": origin(cls),
            "description": cls.describe(),
            "parameters": _config_fields(cls.Config, f"strategies.{name}"),
        }
        for name, cls in registered_strategies().items()
    ]
    if args.json:
        print(json.dumps(strategies, indent=1))
        return 0
    for strategy in strategies:
        print(f"{strategy['name']}  (from {strategy['origin']})")
        print(f"    {strategy['description']}")
        _print_fields(strategy["parameters"], "parameters")
    return 0


def cmd_sources(args: argparse.Namespace) -> int:
    from labkit._plugins import origin
    from labkit.data.registry import registered_sources

    sources: list[dict[str, Any]] = [
        {
            "kind": kind,
            "spec": f"{kind}:{cls.argument}" if cls.argument else kind,
            "argument": cls.argument,
            "origin": origin(cls),
            "description": cls.describe(),
        }
        for kind, cls in registered_sources().items()
    ]
    if args.json:
        print(json.dumps(sources, indent=1))
        return 0
    width = max((len(source["spec"]) for source in sources), default=0)
    for source in sources:
        print(f"{source['spec']:<{width}}  (from {source['origin']})  {source['description']}")
    return 0


def _sides(sides: frozenset[str]) -> list[str]:
    known = ("BUY", "SELL", "HOLD")
    return [side for side in known if side in sides] + sorted(set(sides) - set(known))


def _config_fields(model: type[BaseModel], prefix: str) -> list[dict[str, Any]]:
    from pydantic_core import to_jsonable_python

    fields = []
    for name, info in model.model_fields.items():
        required = info.is_required()
        default = None if required else info.get_default(call_default_factory=True)
        fields.append(
            {
                "key": f"{prefix}.{name}",
                "default": to_jsonable_python(default),
                "required": required,
                "description": info.description or "",
            }
        )
    return fields


def _print_fields(fields: list[dict[str, Any]], title: str) -> None:
    if not fields:
        print(f"    {title}: none")
        return
    print(f"    {title}:")
    for field in fields:
        value = "(required)" if field["required"] else json.dumps(field["default"])
        print(
            f"      {field['key']} = {value}" + (f"  {field['description']}" if field["description"] else "")
        )

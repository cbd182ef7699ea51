"""YAML reading and writing with YAML 1.2 scalars.

PyYAML implements YAML 1.1, where ``amp: off`` is ``False``, ``lr: 1e-3`` is the *string*
``"1e-3"``, ``012`` is octal 10, ``1:30`` is 90 and ``2024-01-01`` is a date. Configs (and
command-line overrides) are read with YAML 1.2 rules instead: booleans are only true/false,
``1e-3`` is a float, and everything else that is not null, an int or a float stays a string.
The dumper quotes any string that either rule set would read as something else, so dumped files
round-trip here and read the same in other YAML tools.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"

_BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_12 = re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+)$")
_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
       |[-+]?[0-9][0-9_]*\.(?:[eE][-+]?[0-9]+)?
       |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
       |[-+]?\.(?:inf|Inf|INF)
       |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class ConfigLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, ints and floats, and no implicit timestamps."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT, _TIMESTAMP)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _construct_mapping_unique(loader: ConfigLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    """Mappings reject duplicate keys (PyYAML silently keeps the last one)."""
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r} (first set on line {seen[key].start_mark.line + 1}); "
                "remove one of them", key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


ConfigLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping_unique)
ConfigLoader.add_implicit_resolver(_BOOL, _BOOL_12, list("tTfF"))
ConfigLoader.add_implicit_resolver(_INT, _INT_12, list("-+0123456789"))
ConfigLoader.add_implicit_resolver(_FLOAT, _FLOAT_12, list("-+0123456789."))


class ConfigDumper(yaml.SafeDumper):
    """SafeDumper that also quotes strings a YAML 1.2 reader would take for floats (``'1e-3'``)."""


ConfigDumper.add_implicit_resolver(_FLOAT, _FLOAT_12, list("-+0123456789."))


def parse_yaml(text: str) -> Any:
    """Parse YAML text with the config rules (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=ConfigLoader)  # noqa: S506 -- ConfigLoader is a SafeLoader


def dump_yaml(data: Any) -> str:
    """Block-style YAML that :func:`parse_yaml` reads back to ``data``; keys keep their order."""
    return yaml.dump(data, Dumper=ConfigDumper, sort_keys=False, default_flow_style=False)

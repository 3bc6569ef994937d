"""Build hooks of the documentation: the scenario-file reference is written from the JSON
Schema that the package ships, so the page and the reader cannot disagree."""

from __future__ import annotations

import re
from typing import Any

MARKER = "<!-- scenario-reference -->"
#: A reST role left in a rendered docstring (``:class:`~promisesim.Result``` becomes
#: ``:class:<code>~promisesim.Result</code>``).
ROLE = re.compile(r":(?:class|meth|func|attr|mod|data|exc|obj):<code>(~?)([\w.]+)</code>")

#: The order of the reference's sections, with their titles.
SECTIONS = [
    ("scenario", "The file"), ("run", "run"), ("agent", "agents[]"),
    ("template", "A member or a version (template)"), ("super_agent", "super_agents[]"),
    ("versioned", "versioned[]"), ("promise", "promises[]"), ("body", "A promise's body"),
    ("condition", "Conditions"), ("failures", "failures"), ("maintenance", "maintenance"),
    ("error_bursts", "Error bursts"), ("backoff", "backoff"), ("budget", "budget"),
    ("breaker", "breaker"), ("workload", "workloads[]"), ("observer", "observers[]"),
    ("objective", "objectives[]"), ("alert", "alerts[]"), ("injection", "injections[]"),
    ("outage", "outage"), ("degrade", "degrade"), ("partition", "partition"),
    ("scale_to", "scale_to"), ("autoscaler", "autoscaler"), ("release", "release"),
    ("retire", "retire"), ("migrate", "migrate"), ("canary", "canary"),
    ("rollback", "A canary's rollback"),
    ("undocumented_change", "undocumented_change"), ("distribution", "Times and distributions"),
]


def _bounds(frag: dict[str, Any]) -> str:
    low, high = frag.get("minimum"), frag.get("maximum")
    above, below = frag.get("exclusiveMinimum"), frag.get("exclusiveMaximum")
    if low is not None and high is not None:
        return f" in [{low}, {high}]"
    if above is not None and below is not None:
        return f" in ({above}, {below})"
    if low is not None:
        return f" ≥ {low}"
    if above is not None:
        return f" > {above}"
    return ""


def _type(frag: dict[str, Any]) -> str:
    """A schema fragment in words, with links to the sections of referenced elements."""
    if "$ref" in frag:
        name = frag["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.replace('_', '-')})"
    if "enum" in frag:
        return "one of " + ", ".join(f"`{v}`" for v in frag["enum"])
    if "oneOf" in frag:
        return " or ".join(_type(choice) for choice in frag["oneOf"])
    kind = frag.get("type")
    if isinstance(kind, list):
        return " or ".join(_type({**frag, "type": k}) for k in kind)
    if kind == "null":
        return "null"
    if kind == "string":
        return "a name"
    if kind == "boolean":
        return "true or false"
    if kind == "integer":
        return "a whole number" + _bounds(frag)
    if kind == "number":
        return "a number" + _bounds(frag)
    if kind == "array":
        items = frag.get("items", {})
        if items.get("type") == "string":
            return "a list of names"
        return "a list of " + _type(items)
    if kind == "object":
        if len(frag.get("properties", {})) == 1:
            (key, inner), = frag["properties"].items()
            return f"`{{{key}: ...}}` with {_type(inner)}"
        if frag.get("properties"):
            keys = ", ".join(f"`{k}`" for k in frag["properties"])
            return f"a mapping with {keys}"
        if isinstance(frag.get("additionalProperties"), dict):
            return "a mapping of names to " + _type(frag["additionalProperties"])
        return "an empty mapping"
    return "any value"


def _section(name: str, title: str, frag: dict[str, Any]) -> list[str]:
    out = [f"### {title} {{#{name.replace('_', '-')}}}", ""]
    if frag.get("description"):
        out += [frag["description"], ""]
    if frag.get("type") == "object" and frag.get("properties"):
        required = set(frag.get("required", ()))
        out += ["| key | required | value |", "|---|---|---|"]
        for key, value in frag["properties"].items():
            out.append(f"| `{key}` | {'yes' if key in required else ''} | {_type(value)} |")
        out.append("")
    elif "oneOf" in frag:
        out += ["One of:", ""]
        for choice in frag["oneOf"]:
            text = _type(choice)
            if choice.get("type") == "object" and len(choice.get("properties", {})) == 1:
                (key, inner), = choice["properties"].items()
                text = f"`{key}:` {_type(inner)}"
            if choice.get("description"):
                text += f": {choice['description']}"
            out.append(f"* {text}")
        out.append("")
    return out


def reference() -> str:
    from promisesim.model.schema import scenario_schema

    document = scenario_schema()
    defs = {"scenario": document, **document["$defs"]}
    missing = set(defs) - {name for name, _ in SECTIONS}
    if missing:   # a new element must get a section: the strict build fails without one
        raise ValueError(f"the scenario reference has no section for {sorted(missing)}")
    lines: list[str] = []
    for name, title in SECTIONS:
        lines += _section(name, title, defs[name])
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, reference())
    return markdown


def _role(match: re.Match) -> str:
    short, path = match.groups()
    shown = path.rsplit(".", 1)[-1] if short else path
    # an optional cross-reference: a link where the object is documented, plain code elsewhere
    return f'<autoref identifier="{path}" optional><code>{shown}</code></autoref>'


def on_page_content(html: str, **_: Any) -> str:
    return ROLE.sub(_role, html)

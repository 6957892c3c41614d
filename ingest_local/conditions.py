"""CloudFormation conditions evaluated as the local deploy needs them: which are false with the
stack's parameters, so that the resources they guard are left out, as CloudFormation does."""

from __future__ import annotations

from typing import Any


def false_conditions(template: dict[str, Any], parameters: dict[str, str]) -> set[str]:
    """Conditions of ``template`` that are false with ``parameters`` (defaults for the rest).

    Only conditions built from parameters (``Fn::Equals`` / ``Not`` / ``And`` / ``Or`` /
    ``Condition``, ``Ref`` and ``Fn::Join`` of parameters) are evaluated; any other is unknown
    and never counted as false.
    """
    declared = template.get("Parameters", {})
    values: dict[str, Any] = {name: p.get("Default") for name, p in declared.items()}
    values.update(parameters)
    for name, param in declared.items():
        if param.get("Type") == "CommaDelimitedList" and isinstance(values.get(name), str):
            values[name] = str(values[name]).split(",")

    class Unknown(Exception):
        pass

    def value(node: Any) -> Any:
        if isinstance(node, str | int | float):
            return node
        if isinstance(node, dict) and set(node) == {"Ref"} and values.get(node["Ref"]) is not None:
            return values[node["Ref"]]
        if isinstance(node, dict) and set(node) == {"Fn::Join"}:
            sep, parts = node["Fn::Join"]
            items = value(parts)
            if isinstance(items, list):
                return str(sep).join(str(value(i)) for i in items)
        raise Unknown

    def truth(node: Any, seen: tuple[str, ...] = ()) -> bool:
        if isinstance(node, str):  # a condition's name
            if node in seen or node not in template.get("Conditions", {}):
                raise Unknown
            return truth(template["Conditions"][node], (*seen, node))
        if not isinstance(node, dict) or len(node) != 1:
            raise Unknown
        ((fn, args),) = node.items()
        if fn == "Fn::Equals":
            return str(value(args[0])) == str(value(args[1]))
        if fn == "Fn::Not":
            return not truth(args[0], seen)
        if fn == "Fn::And":
            return all(truth(a, seen) for a in args)
        if fn == "Fn::Or":
            return any(truth(a, seen) for a in args)
        if fn == "Condition":
            return truth(args, seen)
        raise Unknown

    false: set[str] = set()
    for name in template.get("Conditions", {}):
        try:
            if not truth(name):
                false.add(name)
        except Unknown:
            pass
    return false

"""Which lines of a large FHIR NDJSON export to validate with fhir.resources: one line of every distinct *shape* plus
a random sample drawn with a fixed seed. A shape is a resource with its values reduced to what fhir.resources judges
by structure: every key at every depth, every list's length, every leaf's JSON type, and every string's layout (runs
of digits and of letters collapsed, punctuation and whitespace kept, Varde ids as one token). Two lines of one shape
differ only in which digits and letters they hold, so a line whose structure, cardinality, types or date/number/code
layout is off is a shape of its own and is validated; a value that is wrong in the same layout (a 13th month, an id
too long) is caught only if the sample draws it."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from typing import Any

Shape = str | tuple[Any, ...]

_VARDE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_RUN = re.compile(r"[0-9]+|[^\W\d_]+")


def shape(value: Any) -> Shape:
    """The shape of one parsed JSON value (see the module docstring)."""
    if isinstance(value, dict):
        return ("{", *((key, shape(item)) for key, item in sorted(value.items())))
    if isinstance(value, list):
        return ("[", *(shape(item) for item in value))
    if isinstance(value, str):
        text = _VARDE_ID.sub("#", value)  # after this no letter or digit of an id is left
        return "s:" + _RUN.sub(lambda m: "9" if m[0][0].isdigit() else "a", text)
    return type(value).__name__  # bool, int, float, NoneType: the JSON type, not the value


def lines_to_validate(lines: list[str], parsed: list[Any], sample: int, seed: int) -> tuple[list[str], int]:
    """The lines to hand to fhir.resources: the first line of each distinct shape, plus `sample` further lines drawn
    with `random.Random(seed)`; and the number of distinct shapes. `parsed[i]` is `json.loads(lines[i])`."""
    first_of_shape: dict[Shape, int] = {}
    for index, resource in enumerate(parsed):
        first_of_shape.setdefault(shape(resource), index)
    chosen = set(first_of_shape.values())
    rest = [i for i in range(len(lines)) if i not in chosen]
    chosen.update(random.Random(seed).sample(rest, min(sample, len(rest))))
    return [lines[i] for i in sorted(chosen)], len(first_of_shape)


def validate(lines: Iterable[str]) -> int:
    """Validate each line with fhir.resources (R4B) as the model its resourceType names; raises on the first line
    that does not validate, returns how many lines validated."""
    from fhir.resources.R4B import get_fhir_model_class

    count = 0
    for line in lines:
        get_fhir_model_class(json.loads(line)["resourceType"]).model_validate_json(line)
        count += 1
    return count

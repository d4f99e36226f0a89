"""The export test's choice of lines to validate (tests/fhir_shapes.py): a single broken line among thousands of good
ones is chosen, whatever the seed, when its structure, a type, a code or a layout differs; lines alike but for their
ids and digits share one shape."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from clinician_api import fhir
from tests.fhir_shapes import lines_to_validate, shape, validate

PATIENT = uuid.UUID("0b7f3c4e-5d1a-4b7e-9a51-0c2f4e8d9a10")
T = datetime(2026, 11, 21, 9, 0, 12, 1000, tzinfo=UTC)


def _observations(n: int) -> list[dict[str, Any]]:
    """n SpO2 Observations as the export writes them, a second and a value apart."""
    return [
        fhir.observation(
            fhir.ReadingRow(
                uuid.uuid4(), PATIENT, "gw-test-1", "spo2", 90.0 + i % 9, T + timedelta(seconds=i),
                T + timedelta(seconds=i + 3), "A4:C1:38:00:00:01", "pulse_oximeter", "PO-60", None, (),
            )
        )
        for i in range(n)
    ]  # fmt: skip


def test_observations_alike_but_for_their_digits_share_one_shape() -> None:
    resources = _observations(500)
    lines = [json.dumps(r) for r in resources]
    chosen, shapes = lines_to_validate(lines, sample=10, seed=1)
    assert shapes == 1
    assert len(chosen) == 11 and validate(chosen) == 11


def _broken_missing_status(r: dict[str, Any]) -> None:
    del r["status"]  # required, 1..1


def _broken_value_as_text(r: dict[str, Any]) -> None:
    r["valueQuantity"]["value"] = "ninety-two"  # a decimal in JSON quotes


def _broken_date_layout(r: dict[str, Any]) -> None:
    r["effectiveDateTime"] = "21.11.2026 09:00"  # not an xs:dateTime


def _broken_two_subjects(r: dict[str, Any]) -> None:
    r["subject"] = [r["subject"], r["subject"]]  # 0..1


def _broken_code_with_space(r: dict[str, Any]) -> None:
    r["status"] = "final "  # a code has no trailing whitespace


@pytest.mark.parametrize(
    "breaks",
    [_broken_missing_status, _broken_value_as_text, _broken_date_layout, _broken_two_subjects, _broken_code_with_space],
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_broken_line_among_thousands_is_chosen_and_fails_validation(breaks: Any, seed: int) -> None:
    resources = _observations(3000)
    breaks(resources[1733])
    lines = [json.dumps(r) for r in resources]
    chosen, shapes = lines_to_validate(lines, sample=20, seed=seed)
    assert shapes == 2 and lines[1733] in chosen and len(chosen) == 22
    with pytest.raises(ValidationError):
        validate(chosen)


def test_the_sample_is_fixed_by_its_seed_and_differs_between_seeds() -> None:
    resources = _observations(1000)
    lines = [json.dumps(r) for r in resources]
    assert lines_to_validate(lines, 50, seed=7) == lines_to_validate(lines, 50, seed=7)
    assert lines_to_validate(lines, 50, seed=7) != lines_to_validate(lines, 50, seed=8)


def test_a_shape_keeps_keys_letters_types_list_lengths_and_layouts_and_drops_digits_and_ids() -> None:
    one, other = (json.dumps(r) for r in _observations(2))
    assert shape(one) == shape(other) and one != other
    assert len({shape(json.dumps({"a": v})) for v in (1, 1.0, "1", True, None, [1], [1, 2])}) == 7
    assert shape('"2026-11-21T09:00:12+00:00"') == shape('"2025-01-02T10:11:12+01:00"') == '"9999-99-99T99:99:99+99:99"'
    assert shape('{"value": 92.0}') != shape('{"value": 102.0}')  # digits are counted, not collapsed
    assert shape('"2026-11-21T09:00:12+00:00"') != shape('"2026-11-21T09:00:12.001000+00:00"')
    assert shape('"final"') != shape('"final "') != shape('"amended"')
    assert shape(f'"Patient/{uuid.uuid4()}"') == shape(f'"Patient/{uuid.uuid4()}"') == '"Patient/#"'
    assert shape(f'"Device/dev-{uuid.uuid4().hex[:24]}"') == '"Device/dev-#"'
    assert shape('"Device/dev-cafe"') == '"Device/dev-cafe"'  # a word is no id
    assert shape(f'"urn:uuid:{uuid.uuid4()}"') == '"urn:uuid:#"'

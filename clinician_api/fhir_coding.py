"""Which codes a FHIR resource carries: the Observation code of a reading (LOINC, IEEE 11073 MDC, category and
profile, chosen by kind, by the device that measured and by the glucose sample type), the identifier system of a
Norwegian national identity number (chosen by the number), and the PHD device codes of a measuring device.

Pure tables and functions; `clinician_api.fhir` builds resources from them and `fhir_query` turns a `code` search
into the readings it matches with the same tables, so what is exported and what is searched cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vitals import KINDS, Kind

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

# Norwegian person identifiers (Volven / no-basis): the system follows from the number itself.
FODSELSNUMMER = "urn:oid:2.16.578.1.12.4.1.4.1"
D_NUMMER = "urn:oid:2.16.578.1.12.4.1.4.2"
H_NUMMER = "urn:oid:2.16.578.1.12.4.1.4.3"
NATIONAL_ID_SYSTEMS = (FODSELSNUMMER, D_NUMMER, H_NUMMER)

VITALSIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
BP_PROFILE = "http://hl7.org/fhir/StructureDefinition/bp"
NO_BASIS_PATIENT = "http://hl7.no/fhir/StructureDefinition/no-basis-Patient"
NO_BASIS_ORGANIZATION = "http://hl7.no/fhir/StructureDefinition/no-basis-Organization"
NO_BASIS_PRACTITIONER = "http://hl7.no/fhir/StructureDefinition/no-basis-Practitioner"

BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
BP_PANEL_MDC = ("150020", "MDC_PRESS_BLD_NONINV")
BP_COMPONENT_KINDS = (Kind.BP_SYSTOLIC, Kind.BP_DIASTOLIC, Kind.BP_MEAN)
"""The kinds that travel as components of one blood pressure panel (anchored on the systolic reading)."""


def national_id_system(number: str) -> str:
    """The identifier system of an 11-digit Norwegian person number: a D-nummer has 4 added to its first digit
    (day 41–71), an H-nummer 4 added to its third digit (month 41–52); anything else is a fødselsnummer
    (including the synthetic test numbers with 8 added to the month)."""
    digits = number.strip()
    if len(digits) == 11 and digits.isdigit():
        if digits[0] in "4567":
            return D_NUMMER
        if digits[2] in "45":
            return H_NUMMER
    return FODSELSNUMMER


@dataclass(frozen=True, slots=True)
class Coding:
    system: str
    code: str
    display: str

    def as_fhir(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}


@dataclass(frozen=True, slots=True)
class ObservationCode:
    """The coded meaning of one kind of reading: what `Observation.code` holds, its category and profile."""

    kind: Kind
    codings: tuple[Coding, ...]
    text: str
    category: str
    profile: str | None
    device_types: tuple[str, ...] | None = None
    """Only readings from these device types (None: any device type not claimed by another entry)."""
    sample: str | None = None
    """Glucose only: the sample type flag (`sample_…`) the reading carries; '' for readings without one."""


def _loinc(code: str, display: str) -> Coding:
    return Coding(LOINC, code, display)


def _mdc(code: int, ref: str) -> Coding:
    return Coding(MDC, str(code), ref)


def _plain(kind: Kind, profile: str | None, category: str = "vital-signs") -> ObservationCode:
    info = KINDS[kind]
    codings = [_loinc(info.loinc, info.name_en)]
    codings += [_loinc(code, "Oxygen saturation in Arterial blood") for code in info.extra_loinc]
    if info.mdc_code is not None:
        codings.append(_mdc(info.mdc_code, info.mdc_ref or info.name_en))
    return ObservationCode(kind, tuple(codings), info.name_en, category, profile)


_PULSE = KINDS[Kind.PULSE_RATE]
_HEARTRATE = "http://hl7.org/fhir/StructureDefinition/heartrate"

# Glucose by the sample type the meter reports (Glucose Measurement 0x2A18 type nibble, decoded by the edge into the
# flag `sample_<type>`): LOINC by specimen, MDC per IEEE 11073-10417.
_GLUCOSE_SAMPLES: tuple[tuple[str, Coding, Coding, str], ...] = (
    (
        "capillary_whole_blood",
        _loinc("14743-9", "Glucose [Moles/volume] in Capillary blood"),
        _mdc(160184, "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD"),
        "Glucose in capillary blood",
    ),
    (
        "capillary_plasma",
        _loinc("14749-6", "Glucose [Moles/volume] in Serum or Plasma"),
        _mdc(160188, "MDC_CONC_GLU_CAPILLARY_PLASMA"),
        "Glucose in capillary plasma",
    ),
    (
        "venous_whole_blood",
        _loinc("15074-8", "Glucose [Moles/volume] in Blood"),
        _mdc(160192, "MDC_CONC_GLU_VENOUS_WHOLEBLOOD"),
        "Glucose in venous blood",
    ),
    (
        "venous_plasma",
        _loinc("14749-6", "Glucose [Moles/volume] in Serum or Plasma"),
        _mdc(160196, "MDC_CONC_GLU_VENOUS_PLASMA"),
        "Glucose in venous plasma",
    ),
    (
        "arterial_whole_blood",
        _loinc("15074-8", "Glucose [Moles/volume] in Blood"),
        _mdc(160200, "MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD"),
        "Glucose in arterial blood",
    ),
    (
        "arterial_plasma",
        _loinc("14749-6", "Glucose [Moles/volume] in Serum or Plasma"),
        _mdc(160204, "MDC_CONC_GLU_ARTERIAL_PLASMA"),
        "Glucose in arterial plasma",
    ),
    (
        "undetermined_whole_blood",
        _loinc("15074-8", "Glucose [Moles/volume] in Blood"),
        _mdc(160364, "MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD"),
        "Glucose in blood",
    ),
    (
        "undetermined_plasma",
        _loinc("14749-6", "Glucose [Moles/volume] in Serum or Plasma"),
        _mdc(160368, "MDC_CONC_GLU_UNDETERMINED_PLASMA"),
        "Glucose in plasma",
    ),
    (
        "interstitial_fluid",
        _loinc("105272-9", "Glucose [Moles/volume] in Interstitial fluid"),
        _mdc(160212, "MDC_CONC_GLU_ISF"),
        "Glucose in interstitial fluid",
    ),
)
GLUCOSE_SAMPLE_TYPES = tuple(s[0] for s in _GLUCOSE_SAMPLES)

OBSERVATION_CODES: tuple[ObservationCode, ...] = (
    ObservationCode(
        Kind.BP_SYSTOLIC,
        (_loinc(*BP_PANEL), Coding(MDC, *BP_PANEL_MDC)),
        "Blood pressure",
        "vital-signs",
        BP_PROFILE,
    ),
    ObservationCode(
        Kind.PULSE_RATE,
        (_loinc(_PULSE.loinc, "Heart rate"), _mdc(149530, "MDC_PULS_OXIM_PULS_RATE")),
        "Pulse rate (oximeter)",
        "vital-signs",
        _HEARTRATE,
        device_types=("pulse_oximeter",),
    ),
    ObservationCode(
        Kind.PULSE_RATE,
        (_loinc(_PULSE.loinc, "Heart rate"), _mdc(149546, "MDC_PULS_RATE_NON_INV")),
        "Pulse rate (blood pressure cuff)",
        "vital-signs",
        _HEARTRATE,
        device_types=("blood_pressure_monitor",),
    ),
    ObservationCode(Kind.PULSE_RATE, (_loinc(_PULSE.loinc, "Heart rate"),), "Pulse rate", "vital-signs", _HEARTRATE),
    _plain(Kind.HEART_RATE, _HEARTRATE),
    _plain(Kind.SPO2, "http://hl7.org/fhir/StructureDefinition/oxygensat"),
    _plain(Kind.BODY_TEMPERATURE, "http://hl7.org/fhir/StructureDefinition/bodytemp"),
    _plain(Kind.BODY_WEIGHT, "http://hl7.org/fhir/StructureDefinition/bodyweight"),
    _plain(Kind.RESP_RATE, "http://hl7.org/fhir/StructureDefinition/resprate"),
    *(
        ObservationCode(Kind.GLUCOSE, (loinc, mdc), text, "laboratory", None, sample=sample)
        for sample, loinc, mdc, text in _GLUCOSE_SAMPLES
    ),
    ObservationCode(
        Kind.GLUCOSE,
        (_loinc("15074-8", "Glucose [Moles/volume] in Blood"),),
        "Blood glucose (sample type not reported)",
        "laboratory",
        None,
        sample="",
    ),
)


def observation_code(kind: Kind | str, device_type: str | None, flags: Sequence[str] = ()) -> ObservationCode:
    """The code of a reading's Observation (for blood pressure: the panel's)."""
    kind = Kind(kind)
    if kind in BP_COMPONENT_KINDS:
        kind = Kind.BP_SYSTOLIC
    candidates = [c for c in OBSERVATION_CODES if c.kind == kind]
    if kind == Kind.GLUCOSE:
        sample = next((f.removeprefix("sample_") for f in flags if f.startswith("sample_")), "")
        return next((c for c in candidates if c.sample == sample), candidates[-1])
    for code in candidates:
        if code.device_types is None or device_type in code.device_types:
            return code
    raise AssertionError(f"no observation code for {kind}")  # pragma: no cover - every kind has a fallback


def component_codings(kind: Kind) -> list[dict[str, str]]:
    """The codings of one blood pressure component (systolic, diastolic, mean)."""
    info = KINDS[kind]
    codings = [_loinc(info.loinc, info.name_en).as_fhir()]
    if info.mdc_code is not None:
        codings.append(_mdc(info.mdc_code, info.mdc_ref or info.name_en).as_fhir())
    return codings


# Measuring devices after the Personal Health Device IG: the IEEE 11073 specialization of each device type.
PHD_DEVICE_PROFILE = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"
PHD_IDENTIFIER_TYPES = "http://hl7.org/fhir/uv/phd/CodeSystem/ContinuaDeviceIdentifiers"
BLUETOOTH_ADDRESS = "http://hl7.org/fhir/sid/eui-48/bluetooth"
SYSTEM_ID = "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680"
MDS_TYPE = _mdc(65573, "MDC_MOC_VMS_MDS_SIMP")
DEVICE_SPECIALIZATIONS: dict[str, Coding] = {
    "pulse_oximeter": _mdc(528388, "MDC_DEV_SPEC_PROFILE_PULS_OXIM"),
    "blood_pressure_monitor": _mdc(528391, "MDC_DEV_SPEC_PROFILE_BP"),
    "thermometer": _mdc(528392, "MDC_DEV_SPEC_PROFILE_TEMP"),
    "weight_scale": _mdc(528399, "MDC_DEV_SPEC_PROFILE_SCALE"),
    "glucose_meter": _mdc(528401, "MDC_DEV_SPEC_PROFILE_GLUCOSE"),
    "heart_rate_monitor": _mdc(528390, "MDC_DEV_SPEC_PROFILE_MIN_ECG"),
}

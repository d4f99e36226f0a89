"""Virtual BLE health devices: exact GATT bytes (`encoders`), patient physiology (`physiology`), scenarios
(`scenarios`), simulated homes feeding real edge Agents (`home`) and fleet load (`fleet`). See docs/simulators.md.

Nothing here imports the gateway's decoders; the two sides are written apart and checked against each other.
"""

__all__: list[str] = []

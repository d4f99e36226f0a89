"""Virtual BLE health devices: exact GATT bytes (`encoders`), patient physiology, scenarios and fleet load.

Nothing here imports the gateway's decoders; the two sides are written apart and checked against each other.
"""

__all__: list[str] = []

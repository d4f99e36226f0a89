"""The gateway's Bumble host pairs with Bumble's built-in primitives (`edge_agent.links.bumble_link`), a device may
use the `cryptography` wheel's: both must compute the same SMP values, or LE Secure Connections pairing fails."""

from __future__ import annotations

import secrets

from bumble.crypto import builtin
from bumble.crypto import cryptography as wheel


def test_builtin_and_wheel_primitives_agree_on_key_agreement_cmac_and_aes() -> None:
    for _ in range(3):
        ours, theirs = builtin.EccKey.generate(), wheel.EccKey.generate()
        assert ours.dh(theirs.x, theirs.y) == theirs.dh(ours.x, ours.y)
        d = secrets.token_bytes(31)
        assert (builtin.EccKey.from_private_key_bytes(d).x, builtin.EccKey.from_private_key_bytes(d).y) == (
            wheel.EccKey.from_private_key_bytes(d).x,
            wheel.EccKey.from_private_key_bytes(d).y,
        )
        key, data = secrets.token_bytes(16), secrets.token_bytes(65)
        assert builtin.aes_cmac(data, key) == wheel.aes_cmac(data, key)
        assert builtin.e(key, data[:16]) == wheel.e(key, data[:16])

"""Fleet load benchmark: readings/s that N gateways publish and get PUBACKed (MQTT v5, QoS 1, own logins).

Starts its own infrastructure (PostgreSQL for provisioning, Mosquitto) under `.varde/bench` without the platform
services, so the broker answers PUBACK 0x10 (no subscribers): this measures the gateway side and the broker, not
ingest. Three runs over the same connections, one JSON line:

- baseline: one fixed, pre-built envelope per connection re-sent as fast as the windows allow (paho + broker alone);
- paced: real envelopes (unique ids, current times) at the target rate — `readings_per_s` is what was acked;
- max: real envelopes as fast as the windows allow.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VARDE_HOME", str(ROOT / ".varde" / "bench"))


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--window", type=int, default=16)
    args = parser.parse_args()

    from device_simulators.fleet import Fleet, FleetGateway
    from store.settings import Settings, varde_home
    from varde import stack
    from varde.admin import provision_fleet

    with stack.running(varde_home(), services=False):
        created = provision_fleet(Settings(), args.gateways, team="Bench fleet")
        gateways = [FleetGateway(c.gateway_id, c.password, c.mqtt_host, c.mqtt_port) for c in created]
        with Fleet(gateways, batch=args.batch, window=args.window) as fleet:
            fleet.run(None, 2.0)  # warm-up: the broker's first seconds are slower than its steady state
        results = {}
        for name, rate, fixed in (("baseline", None, True), ("paced", args.rate, False), ("max", None, False)):
            with Fleet(gateways, batch=args.batch, window=args.window) as fleet:
                cpu = _cpu_s()
                report = fleet.run(rate, args.seconds, fixed_payload=fixed)
                results[name] = (report, _cpu_s() - cpu)
    paced, paced_cpu = results["paced"]
    peak, _ = results["max"]
    base, _ = results["baseline"]
    failures = {k: v for r, _ in results.values() for k, v in r.puback_failures.items()}
    print(
        json.dumps(
            {
                "bench": "fleet",
                "readings_per_s": paced.readings_per_s,
                "target_readings_per_s": args.rate,
                "acked": paced.readings_acked,
                "sent": paced.readings_sent,
                "unacked_envelopes": paced.unacked,
                "puback_failures": failures,
                "no_matching_subscribers": paced.no_matching_subscribers,
                "cpu_share_at_target": round(paced_cpu / paced.elapsed_s, 3) if paced.elapsed_s else None,
                "max_readings_per_s": peak.readings_per_s,
                "max_envelopes_per_s": round(peak.envelopes_acked / peak.elapsed_s, 1) if peak.elapsed_s else 0,
                "baseline_readings_per_s": base.readings_per_s,
                "baseline_envelopes_per_s": round(base.envelopes_acked / base.elapsed_s, 1) if base.elapsed_s else 0,
                "baseline": "fixed pre-built envelope re-sent over the same connections and windows",
                "gateways": args.gateways,
                "connections": paced.connections,
                "batch": args.batch,
                "window": args.window,
                "seconds": args.seconds,
                "ingest": False,
            }
        )
    )


if __name__ == "__main__":
    main()

"""The threshold editor's what-if line in a real browser: editing a limit changes the alarm count of the last 90
days before anything is saved, and saving makes it the count "now"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import screenshot, sign_in
from tests.integration.api.support import insert_readings
from tests.stack_plugin import Tenant

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_editing_a_limit_updates_the_what_if_line_before_saving(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(protocol="diabetes")
    patient, gateway = tenant.patients[0], tenant.gateways[0]
    # 90 mornings of glucose: 6.0 mmol/L, 4.6 every tenth day (in range under the diabetes yellow limit 3.9),
    # 15.0 on two days (over yellow 13.9). Each breach is its own alarm (the days are far apart).
    values = {d: 6.0 for d in range(1, 91)}
    values.update({d: 4.6 for d in range(10, 91, 10)})
    values[15] = values[55] = 15.0
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    times = [now - timedelta(days=d) + timedelta(hours=2) for d in values]
    insert_readings(
        db, patient, gateway.gateway_id, "glucose", list(values.values()), times, device_type="glucose_meter"
    )
    high = sum(1 for v in values.values() if v > 13.9)
    low_at_5 = sum(1 for v in values.values() if v < 5.0)

    sign_in(page, tenant.nurse, tenant.nurse_password, f"/dashboard/patients/{patient}/edit")
    page.get_by_label("Måling som skal endres").select_option("glucose")
    line = page.locator("#limits-what-if")
    expect(line).to_have_attribute("aria-live", "polite")
    expect(line).to_have_text(f"Med disse grensene ville de siste 90 dagene gitt {high} alarmer ({high} nå).")

    page.locator("#mode-yellow_low").select_option("custom")
    page.locator("#value-yellow_low").fill("5")
    expect(line).to_have_text(
        f"Med disse grensene ville de siste 90 dagene gitt {high + low_at_5} alarmer ({high} nå)."
    )
    # Not saved: the patient has no limits of their own yet.
    stored = db.execute("SELECT count(*) FROM threshold_overrides WHERE patient_id = %s", (patient,)).fetchone()
    assert stored == (0,)
    screenshot(page, "threshold-what-if")

    # A value the save would refuse (yellow under red) gives no count, and says why.
    page.locator("#value-yellow_low").fill("2")
    expect(line).to_have_text("Alarmtallet for de siste 90 dagene vises når grensene er gyldige.")

    page.locator("#value-yellow_low").fill("5")
    page.get_by_role("button", name="Lagre grensene").click()
    expect(page.locator("#limits-saved")).to_contain_text("Blodsukker")
    expect(line).to_have_text(
        f"Med disse grensene ville de siste 90 dagene gitt {high + low_at_5} alarmer ({high + low_at_5} nå)."
    )

    # In English, with the saved limit now in force: editing it back shows the count it had before.
    page.get_by_role("link", name="English").click()
    page.get_by_label("Measurement to change").select_option("glucose")
    page.locator("#mode-yellow_low").select_option("inherit")
    expect(line).to_have_text(
        f"With these limits, the last 90 days would have raised {high} alarms ({high + low_at_5} now)."
    )

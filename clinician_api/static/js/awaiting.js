// The nurse queue's message work items: patient messages waiting for the care team's answer, oldest first,
// with their age. A small addition beside the alarm queue; it refreshes on its own every 30 s.
import { api, requireSession } from "./api.js";
import { $, h, replaceChildren } from "./dom.js";
import { formatAge, t } from "./i18n.js";

async function refresh() {
  const { items } = await api("/api/v1/messages/awaiting");
  $("#awaiting-empty").hidden = items.length > 0;
  replaceChildren(
    $("#awaiting"),
    items.map((item) =>
      h(
        "li",
        { "data-thread": item.thread_id },
        h(
          "a",
          { href: `/dashboard/patients/${item.patient_id}?thread=${item.thread_id}#contact` },
          t("awaiting_item", { patient: item.patient_name, subject: item.subject, n: item.waiting_messages, age: formatAge(item.waiting_since) }),
        ),
      ),
    ),
  );
}

if (requireSession()) {
  refresh().catch(() => {});
  setInterval(() => refresh().catch(() => {}), 30_000);
}

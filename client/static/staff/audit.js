// The audit log view: the latest hash-chained events, and whether the chain verifies.

import { formatTime, t } from "../common/i18n.js";
import { staffApi } from "./api.js";

const $ = (id) => document.getElementById(id);

export async function enter() {
  const log = await staffApi.get("/api/v1/staff/audit?limit=200");
  $("aud-chain").textContent = log.chain_ok
    ? t("aud.chain_ok", { count: log.total })
    : t("aud.chain_broken", { detail: log.chain_error });
  $("aud-chain").className = log.chain_ok ? "ok" : "error";
  const body = $("aud-table").tBodies[0];
  body.replaceChildren();
  for (const event of log.events) {
    const row = body.insertRow();
    const at = formatTime(event.at, { seconds: true });
    for (const value of [event.event_id, at, event.actor, event.action, event.object, event.hash.slice(0, 12)]) {
      row.insertCell().textContent = String(value);
    }
  }
}

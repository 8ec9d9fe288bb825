// The unlock ceremony: the system administrator opens it; each supervisor, signed in under
// their own login, types their share card code (checked on entry: a wrong share is named);
// the time release is fetched from the centre or typed in; progress reads "2 of 3".

import { t } from "../common/i18n.js";
import { formatDuration } from "../common/http.js";
import { staffApi } from "./api.js";
import { describe, handleError } from "./main.js";

const $ = (id) => document.getElementById(id);
let poll = null;

function message(text, kind = "") {
  const node = $("cer-message");
  node.textContent = text;
  node.className = kind;
}

function render(state) {
  const me = staffApi.me || {};
  const isAdmin = me.role === "system_administrator";
  const open = state.status === "open";
  const lines = [];
  if (state.status === "none" || state.status === "reset") lines.push(t("cer.none"));
  if (open) {
    lines.push(t("cer.progress", { entered: state.shares_entered, needed: state.shares_needed }));
    if (state.entered_by?.length) lines.push(`${t("cer.entered_by")}: ${state.entered_by.join(", ")}`);
    if (state.release) lines.push(t("cer.release_in"));
    const left = Date.parse(state.expires_at) - Date.parse(state.server_time);
    lines.push(t("cer.expires", { time: formatDuration(left) }));
  }
  if (state.status === "unlocked") {
    lines.push(t("cer.unlocked", { variants: state.variants }) + (state.dry_run ? ` ${t("cer.dry_run")}` : ""));
  }
  const box = $("cer-state");
  box.replaceChildren(...lines.map((line) => Object.assign(document.createElement("p"), { textContent: line })));
  if (open) {
    const bar = document.createElement("progress");
    bar.max = state.shares_needed || 1;
    bar.value = state.shares_entered;
    bar.setAttribute("aria-label", lines[0]);
    box.prepend(bar);
  }
  $("cer-open").hidden = open || state.status === "unlocked" || !isAdmin;
  const alreadyEntered = (state.entered_by || []).includes(me.login);
  // Share holders are the chief examiner and invigilators, never the administrator who opened it.
  const holdsShares = ["chief_examiner", "invigilator"].includes(me.role);
  $("cer-share").hidden = !open || alreadyEntered || !holdsShares;
  $("cer-release").hidden = !open || Boolean(state.release) || !["system_administrator", "chief_examiner"].includes(me.role);
  $("cer-reset").hidden = !open || !["system_administrator", "chief_examiner"].includes(me.role);
}

async function refresh() {
  render(await staffApi.get("/api/v1/staff/ceremony"));
}

async function act(call, okText) {
  message(""); // a new action's outcome never reads as the last one's
  try {
    const state = await call();
    message(okText || "", "ok");
    render(state.status ? state : await staffApi.get("/api/v1/staff/ceremony"));
  } catch (err) {
    message(describe(err), "error");
    if (err.status === 401) handleError(err);
    else await refresh().catch(() => {});
  }
}

export function setup() {
  $("cer-open").addEventListener("submit", (event) => {
    event.preventDefault();
    act(() => staffApi.post("/api/v1/staff/ceremony", { session_id: $("cer-session").value.trim() }));
  });
  $("cer-share").addEventListener("submit", (event) => {
    event.preventDefault();
    const share = $("cer-share-code").value;
    act(async () => {
      const state = await staffApi.post("/api/v1/staff/ceremony/shares", { share });
      $("cer-share-code").value = "";
      return state;
    }, t("cer.accepted"));
  });
  $("cer-release").addEventListener("submit", (event) => {
    event.preventDefault();
    act(() => staffApi.post("/api/v1/staff/ceremony/release", { code: $("cer-release-code").value }));
  });
  $("cer-release-fetch").addEventListener("click", () => {
    act(() => staffApi.post("/api/v1/staff/ceremony/release", {}));
  });
  $("cer-reset").addEventListener("click", () => act(() => staffApi.post("/api/v1/staff/ceremony/reset")));
}

export async function enter() {
  message("");
  await refresh();
  poll = setInterval(() => refresh().catch(() => {}), 3000);
}

export function leave() {
  clearInterval(poll);
}

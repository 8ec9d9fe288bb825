// The unlock ceremony: the system administrator opens it; each supervisor, signed in under
// their own login, types their share card code (checked on entry: a wrong share is named);
// the time release is fetched from the centre or typed in once the shares are complete.
// The screen shows the set code to compare with the cards ("Set: XXXXXXXX"), each step with
// its state (done, next, waiting) and who did it, and what the viewer does next. Below it, the
// inspection checklist with its two sign-offs and the dry run (art. 21(3)); a warning when a
// real ceremony opens without them (the centre's rule can make them required).

import { formatTime, t } from "../common/i18n.js";
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

// One line of the steps list: its state in words (not only a mark), then what it is.
function step(state, text) {
  const li = document.createElement("li");
  li.dataset.state = state;
  const mark = { done: "✓", next: "→", pending: "·" }[state];
  li.append(
    Object.assign(document.createElement("span"), { className: "step-state", textContent: `${mark} ${t(`cer.state.${state}`)}` }),
    document.createTextNode(` ${text}`),
  );
  return li;
}

function steps(state) {
  const list = document.createElement("ol");
  list.className = "cer-steps";
  list.setAttribute("aria-label", t("cer.steps"));
  list.append(step("done", t("cer.step.opened", { login: state.opened_by || "—" })));
  const holders = state.holders || [];
  for (let n = 1; n <= state.shares_needed; n += 1) {
    const entered = holders[n - 1];
    if (entered) {
      list.append(step("done", t("cer.step.share_done", { n, needed: state.shares_needed, holder: entered.holder_no, login: entered.login })));
    } else {
      list.append(step(n === holders.length + 1 ? "next" : "pending", t("cer.step.share_waiting", { n, needed: state.shares_needed })));
    }
  }
  if (state.release) list.append(step("done", t(`cer.step.release_done.${state.release}`)));
  else list.append(step(state.shares_complete ? "next" : "pending", t("cer.step.release_waiting")));
  list.append(step(state.next_step === "open" ? "next" : "pending", t("cer.step.open")));
  return list;
}

// What happens next, said to the person looking at this screen.
function nextText(state, me, { holdsShares, alreadyEntered, mayRelease }) {
  if (state.next_step === "shares") {
    const left = state.shares_needed - state.shares_entered;
    if (holdsShares && !alreadyEntered) return t("cer.next.share_me");
    if (alreadyEntered) return t("cer.next.share_after_mine", { left });
    return t("cer.next.share_other", { left });
  }
  if (state.next_step === "release") return t(mayRelease ? "cer.next.release_me" : "cer.next.release_other");
  return t("cer.next.opening");
}

function render(state) {
  const me = staffApi.me || {};
  const isAdmin = me.role === "system_administrator";
  const open = state.status === "open";
  // Share holders are the chief examiner and invigilators, never the administrator who opened it.
  const holdsShares = (state.share_roles || ["chief_examiner", "invigilator"]).includes(me.role);
  const mayRelease = (state.release_roles || ["system_administrator", "chief_examiner"]).includes(me.role);
  const alreadyEntered = (state.entered_by || []).includes(me.login);
  const nodes = [];
  const para = (text, className = "") => Object.assign(document.createElement("p"), { textContent: text, className });
  if (state.status === "none" || state.status === "reset") nodes.push(para(t("cer.none")));
  if (open) {
    const progressText = t("cer.progress", { entered: state.shares_entered, needed: state.shares_needed });
    const bar = document.createElement("progress");
    bar.max = state.shares_needed || 1;
    bar.value = state.shares_entered;
    bar.setAttribute("aria-label", progressText);
    nodes.push(bar, para(progressText));
    if (state.set_code) {
      const code = para(`${t("cer.set_code")} `, "set-code");
      code.append(Object.assign(document.createElement("strong"), { id: "cer-set-code", textContent: state.set_code }));
      nodes.push(code, para(t("cer.set_code_hint"), "muted"));
    }
    nodes.push(steps(state));
    nodes.push(para(nextText(state, me, { holdsShares, alreadyEntered, mayRelease }), "next-step"));
    const left = Date.parse(state.expires_at) - Date.parse(state.server_time);
    nodes.push(para(t("cer.expires", { time: formatDuration(left) })));
  }
  if (state.status === "unlocked") {
    nodes.push(para(t("cer.unlocked", { variants: state.variants }) + (state.dry_run ? ` ${t("cer.dry_run")}` : "")));
  }
  $("cer-state").replaceChildren(...nodes);
  $("cer-open").hidden = open || state.status === "unlocked" || !isAdmin;
  $("cer-share").hidden = !open || alreadyEntered || !holdsShares || Boolean(state.shares_complete);
  // The release form appears once the shares are complete: before, there is nothing to open.
  $("cer-release").hidden = !open || Boolean(state.release) || !mayRelease || !state.shares_complete;
  $("cer-reset").hidden = !open || !mayRelease;
  $("insp-warning").hidden = !(open && state.inspection_warning);
}

// The inspection checklist the centre signed, its sign-offs by two logins and the dry run
// (art. 21(3)), for the session of the open ceremony or the one typed in to open.
let inspected = "";

function inspectionSession(state) {
  if (state.session_id) $("insp-session").value = state.session_id;
  return $("insp-session").value.trim();
}

async function renderInspection(sessionId) {
  inspected = sessionId;
  const holder = $("insp-state");
  const sign = $("insp-sign");
  sign.hidden = true;
  if (!sessionId) {
    holder.replaceChildren();
    return;
  }
  let state;
  try {
    state = await staffApi.get(`/api/v1/staff/inspection?session_id=${encodeURIComponent(sessionId)}`);
  } catch (err) {
    holder.replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: describe(err) }));
    return;
  }
  const para = (text, className = "") => Object.assign(document.createElement("p"), { textContent: text, className });
  const nodes = [];
  if (state.checklist.length) {
    const list = document.createElement("ul");
    list.setAttribute("aria-label", t("insp.checklist"));
    for (const line of state.checklist) list.append(Object.assign(document.createElement("li"), { textContent: line }));
    nodes.push(para(t("insp.checklist")), list);
  } else {
    nodes.push(para(t("insp.no_checklist"), "muted"));
  }
  const logins = state.signed_off_by.map((s) => s.login);
  nodes.push(para(logins.length
    ? t("insp.signed_by", { logins: logins.join(", "), count: logins.length, needed: state.signers_needed })
    : t("insp.not_signed", { needed: state.signers_needed })));
  nodes.push(para(state.dry_run
    ? t("insp.dry_run_ok", { session: state.dry_run.session_id, at: formatTime(state.dry_run.unlocked_at), submitted: state.dry_run.submitted })
    : t("insp.dry_run_missing")));
  if (state.required) nodes.push(para(t("insp.required"), "next-step"));
  holder.replaceChildren(...nodes);
  const me = staffApi.me || {};
  sign.hidden = state.practice || state.signed_off || logins.includes(me.login)
    || !["chief_examiner", "system_administrator"].includes(me.role);
}

async function refresh() {
  const state = await staffApi.get("/api/v1/staff/ceremony");
  render(state);
  await renderInspection(inspectionSession(state));
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
  $("cer-session").addEventListener("change", () => {
    $("insp-session").value = $("cer-session").value.trim();
    renderInspection($("insp-session").value.trim());
  });
  $("insp-form").addEventListener("submit", (event) => {
    event.preventDefault();
    renderInspection($("insp-session").value.trim());
  });
  $("insp-sign").addEventListener("click", async () => {
    const note = $("insp-message");
    note.textContent = "";
    try {
      await staffApi.post("/api/v1/staff/inspection", { session_id: inspected });
    } catch (err) {
      note.textContent = describe(err);
      note.className = "error";
    }
    await renderInspection(inspected).catch(() => {});
  });
}

export async function enter() {
  message("");
  await refresh();
  poll = setInterval(() => refresh().catch(() => {}), 3000);
}

export function leave() {
  clearInterval(poll);
}

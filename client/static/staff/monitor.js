// The room monitor: a live grid of seats showing each one's status in words with an icon
// (not logged in, answering, submitted, absent...; colour only repeats it, staff.css), a
// warning line when not seen recently, items answered and last seen; the room's counts for
// reconciliation (kept after the end, when the last session is over); the room's time changes
// against the limit (art. 31) with the room-wide grant; and the invigilator's actions on the
// selected candidate, first the identity check (art. 30): photo, name, masked ID, verify/refuse.

import { formatTime, t } from "../common/i18n.js";
import { staffApi } from "./api.js";
import { describe } from "./main.js";

const $ = (id) => document.getElementById(id);
let poll = null;
let rooms = [];
let selected = null; // ticket
let lastStatus = null;

const minutes = (ms) => Math.round((ms || 0) / 60000);
const photoUrl = (ticket) => `/api/v1/staff/candidates/${encodeURIComponent(ticket)}/photo`;

function kinds() {
  return JSON.parse(document.getElementById("kinds").textContent);
}

function fillKinds(select, list) {
  select.replaceChildren(
    ...list.map((kind) => Object.assign(document.createElement("option"), { value: kind, textContent: t(`kind.${kind}`) })),
  );
}

function room() {
  return rooms.find((r) => r.room_id === $("mon-room").value) || rooms[0];
}

// What happened to a candidate that reconciliation needs: moves, incidents, violations, time.
function seatNotes(c) {
  const notes = [];
  if (c.seat_moves) notes.push(t("mon.note.moved", { n: c.seat_moves }));
  if (c.incidents) notes.push(t("mon.note.incidents", { n: c.incidents }));
  if (c.violations) notes.push(t("mon.note.violations", { n: c.violations }));
  if (c.time_granted_ms) notes.push(t("mon.note.time", { minutes: Math.round(c.time_granted_ms / 60000) }));
  if (lastStatus?.identity_check && c.logged_in && c.identity !== "verified" && !c.submitted_at) {
    notes.push(t("mon.note.identity_check"));
  }
  return notes.join(" · ");
}

function seatLabel(c) {
  const lastSeen = c.last_seen_at ? formatTime(c.last_seen_at, { seconds: true, date: false }) : "—";
  const label = [
    t("mon.seat", { n: c.seat_no ?? "?" }),
    c.name,
    c.ticket,
    t(`mon.status.${c.status}`),
    t("mon.items_answered", { n: c.items_answered }),
    `${t("mon.last_seen")} ${lastSeen}`,
  ];
  const notes = seatNotes(c);
  return notes ? [...label, notes] : label;
}

const SUMMARY = [
  "candidates", "submitted", "closed", "absent", "not_logged_in", "moved", "incidents", "violations", "time_grants", "pauses",
  "identity_verified",
];

function renderSummary(status) {
  const summary = status.summary || {};
  $("mon-ended").hidden = !status.ended;
  $("mon-summary").replaceChildren(
    ...SUMMARY.map((name) => {
      const li = document.createElement("li");
      li.dataset.count = name;
      li.append(`${t(`mon.sum.${name}`)}: `, Object.assign(document.createElement("strong"), { textContent: String(summary[name] ?? 0) }));
      return li;
    }),
  );
}

function renderGrid(status) {
  const current = room();
  const grid = $("mon-grid");
  grid.style.setProperty("--columns", String(current?.columns || 6));
  const bySeat = new Map(status.candidates.map((c) => [c.seat_no, c]));
  const seats = current ? current.rows * current.columns : status.candidates.length;
  const cells = [];
  for (let seat = 1; seat <= seats; seat += 1) {
    const c = bySeat.get(seat);
    // The list item holds the seat: a button's own role (pressed or not) must stay a button.
    const cell = document.createElement("div");
    cell.className = "seat-cell";
    cell.setAttribute("role", "listitem");
    const node = document.createElement(c ? "button" : "div");
    node.className = "seat";
    cell.append(node);
    if (!c) {
      node.classList.add("empty");
      node.textContent = String(seat);
    } else {
      node.type = "button";
      node.classList.add(`st-${c.status}`);
      const stale = c.logged_in && !c.seen_recently && !c.submitted_at;
      if (stale) node.classList.add("stale");
      if (c.ticket === selected) node.classList.add("selected");
      const lines = seatLabel(c);
      // Seat, name, status in words (its icon comes from staff.css); during the exam the items
      // answered, after the end not (the status is what staff reconcile with); then the notes.
      if (c.has_photo) {
        node.append(Object.assign(document.createElement("img"), { className: "thumb", src: photoUrl(c.ticket), alt: "", loading: "lazy" }));
      }
      const shown = [["l0", lines[0]], ["l1", lines[1]], ["idm", c.id_masked || ""], ["state", lines[3]]];
      if (stale) {
        shown.push(["stale-note", t("mon.stale")]);
        lines.splice(4, 0, t("mon.stale"));
      }
      if (!status.ended) shown.push(["l2", lines[stale ? 5 : 4]]);
      const notes = seatNotes(c);
      if (notes) shown.push(["l3", notes]);
      node.setAttribute("aria-label", lines.join(", "));
      node.setAttribute("aria-pressed", String(c.ticket === selected));
      for (const [className, line] of shown) {
        node.append(Object.assign(document.createElement("span"), { className, textContent: line }));
      }
      node.addEventListener("click", () => select(c));
    }
    cells.push(cell);
  }
  grid.replaceChildren(...cells);
  $("mon-paused").hidden = !status.paused;
  renderSummary(status);
  renderTime(status);
  const chosen = status.candidates.find((c) => c.ticket === selected);
  if (chosen) renderSelected(chosen);
}

// The room's time changes against the session's limit, the approval in force and the cap.
function renderTime(status) {
  const limits = (status.time_limits || [])[0];
  $("mon-time").hidden = !limits;
  if (!limits) return;
  $("mon-time-total").textContent = t("mon.time.total", { minutes: minutes(status.time_changes_ms) });
  $("mon-time-limit").textContent = t("mon.time.limit", { limit: minutes(limits.limit_ms) });
  $("mon-time-approved").hidden = !limits.approved_ms;
  if (limits.approved_ms) {
    $("mon-time-approved").textContent = t("mon.time.approved", {
      minutes: minutes(limits.approved_ms), until: formatTime(limits.approval_expires_at),
    });
  }
  $("mon-time-needs").hidden = !limits.needs_approval;
  $("mon-time-cap").textContent = t("mon.time.cap", { cap: minutes(limits.grant_cap_ms) });
}

// The identity check of the selected candidate: photo, name and masked ID side by side.
function renderSelected(c) {
  $("act-name").textContent = c.name || c.ticket;
  $("act-id").textContent = c.id_masked || "—";
  const photo = $("act-photo");
  photo.hidden = !c.has_photo;
  $("act-no-photo").hidden = Boolean(c.has_photo);
  if (c.has_photo && photo.dataset.ticket !== c.ticket) {
    photo.src = photoUrl(c.ticket);
    photo.alt = t("mon.photo_alt", { name: c.name || c.ticket });
    photo.dataset.ticket = c.ticket;
  }
  const at = c.identity_checked_at ? formatTime(c.identity_checked_at, { seconds: true }) : "";
  $("act-identity-state").textContent = t(`mon.identity.${c.identity || "pending"}`, { by: c.identity_checked_by || "", at });
  $("act-identity-state").className = c.identity === "verified" ? "ok" : c.identity === "refused" ? "error" : "";
  $("act-time").textContent = t("mon.time.candidate", { minutes: minutes(c.time_changes_ms) });
}

function select(c) {
  selected = c.ticket;
  renderSelected(c);
  $("mon-selected").textContent = `${t("mon.selected")}: ${seatLabel(c).join(" · ")}`;
  $("mon-forms").hidden = false;
  refresh().catch(() => {});
}

async function refresh() {
  const current = room();
  if (!current) return;
  lastStatus = await staffApi.get(`/api/v1/staff/rooms/${encodeURIComponent(current.room_id)}/status`);
  renderGrid(lastStatus);
}

async function act(path, body) {
  const note = $("mon-message");
  note.textContent = ""; // a new action's outcome never reads as the last one's
  try {
    await staffApi.post(path, body);
    note.textContent = t("mon.done");
    note.className = "ok";
  } catch (err) {
    note.textContent = describe(err);
    note.className = "error";
  }
  await refresh().catch(() => {});
}

function onCandidate(formId, build) {
  $(formId).addEventListener("submit", (event) => {
    event.preventDefault();
    if (!selected) return;
    const [suffix, body] = build();
    act(`/api/v1/staff/candidates/${encodeURIComponent(selected)}/${suffix}`, body);
  });
}

export function setup() {
  const { incidents, violations } = kinds();
  fillKinds($("act-incident-kind"), incidents);
  fillKinds($("act-violation-kind"), violations);
  $("mon-room").addEventListener("change", () => refresh().catch(() => {}));
  $("mon-refresh").addEventListener("click", () => refresh().catch(() => {}));
  $("mon-pause").addEventListener("click", () => act("/api/v1/staff/pauses", { room_id: room().room_id, reason: "room paused from the monitor" }));
  const approval = () => $("mon-approval").value.trim() || undefined;
  $("mon-resume").addEventListener("click", () => act("/api/v1/staff/pauses/resume", { room_id: room().room_id, approval: approval() }));
  $("mon-room-grant").addEventListener("submit", (event) => {
    event.preventDefault();
    act(`/api/v1/staff/rooms/${encodeURIComponent(room().room_id)}/time-grants`, {
      granted_ms: Number($("mon-room-grant-minutes").value) * 60000,
      reason: $("mon-room-grant-reason").value,
      approval: approval(),
    });
  });
  $("act-verify").addEventListener("click", () => selected && act(`/api/v1/staff/candidates/${encodeURIComponent(selected)}/identity/verify`, {}));
  onCandidate("act-refuse", () => ["identity/refuse", { note: $("act-refuse-note").value }]);
  $("act-absent").addEventListener("click", () => selected && act(`/api/v1/staff/candidates/${encodeURIComponent(selected)}/absent`, {}));
  onCandidate("act-incident", () => ["incidents", { kind: $("act-incident-kind").value, text: $("act-incident-text").value }]);
  onCandidate("act-violation", () => ["violations", { kind: $("act-violation-kind").value, text: $("act-violation-text").value }]);
  onCandidate("act-grant", () => ["time-grants", { granted_ms: Number($("act-grant-minutes").value) * 60000, reason: $("act-grant-reason").value }]);
  onCandidate("act-move", () => ["seat", { room_id: room().room_id, seat_no: Number($("act-move-seat").value), reason: $("act-move-reason").value }]);
}

export async function enter() {
  rooms = await staffApi.get("/api/v1/staff/rooms");
  const select = $("mon-room");
  const chosen = select.value;
  select.replaceChildren(
    ...rooms.map((r) => Object.assign(document.createElement("option"), { value: r.room_id, textContent: r.name ? `${r.room_id} ${r.name}` : r.room_id })),
  );
  if (chosen) select.value = chosen;
  await refresh();
  poll = setInterval(() => refresh().catch(() => {}), 5000);
}

export function leave() {
  clearInterval(poll);
}

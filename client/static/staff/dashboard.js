// The venue dashboard: packages (still encrypted) with time to their unlock window, the version
// in force and who received it (a pending import is confirmed here by a second person), the
// continuous backup's lag and the outbox, a warning when the staff cannot serve a session, the rooms
// with how many candidates are logged in, submitted or absent, and the latest restart of the
// server during a session: paused until the paper is open again, or the time given back; and
// the free disk space in exam-minutes, with a warning when it runs low.

import { formatTime, t } from "../common/i18n.js";
import { formatDuration } from "../common/http.js";
import { staffApi } from "./api.js";
import { describe } from "./main.js";

const $ = (id) => document.getElementById(id);
let timer = null;

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.append(td);
}

function table(headings) {
  const tableNode = document.createElement("table");
  const head = tableNode.createTHead().insertRow();
  for (const heading of headings) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = heading;
    head.append(th);
  }
  return { tableNode, body: tableNode.createTBody() };
}

function windowText(pkg, serverNow) {
  const opens = Date.parse(pkg.window_not_before);
  const closes = Date.parse(pkg.window_not_after);
  if (Number.isNaN(opens)) return "";
  if (serverNow < opens) return t("dash.window_opens_in", { time: formatDuration(opens - serverNow) });
  if (serverNow < closes) return t("dash.window_open", { time: formatDuration(closes - serverNow) });
  return t("dash.window_closed");
}

// A pending import is confirmed by a second staff member under their own login (art. 23(4)).
function confirmCell(row, pkg) {
  const td = document.createElement("td");
  td.textContent = t(`dash.status.${pkg.status}`);
  if (pkg.status === "pending") {
    const me = staffApi.me || {};
    if (me.login === pkg.imported_by) {
      td.append(Object.assign(document.createElement("p"), { className: "muted", textContent: t("dash.confirm_own") }));
    } else {
      const button = Object.assign(document.createElement("button"), {
        type: "button",
        className: "primary",
        textContent: t("dash.confirm", { session: pkg.session_id, version: pkg.manifest_version }),
      });
      button.addEventListener("click", async () => {
        const note = $("dash-confirm-message");
        try {
          const done = await staffApi.post(`/api/v1/staff/packages/${encodeURIComponent(pkg.package_id)}/confirm`);
          note.textContent = t("dash.confirmed", { session: done.session_id, version: done.manifest_version });
          note.className = "ok";
        } catch (err) {
          note.textContent = describe(err);
          note.className = "error";
        }
        await refresh().catch(() => {});
      });
      td.append(document.createElement("br"), button);
    }
  }
  row.append(td);
}

function renderPackages(packages, serverNow) {
  const holder = $("dash-packages");
  if (!packages.length) {
    holder.textContent = t("dash.no_packages");
    return;
  }
  const { tableNode, body } = table([
    t("dash.session"), t("dash.kind"), t("dash.version"), t("dash.status"), t("dash.fragments"),
    t("dash.imported"), t("dash.received_by"), t("dash.package_hash"), t("dash.window"),
  ]);
  for (const pkg of packages) {
    const row = body.insertRow();
    if (pkg.in_force) row.className = "in-force";
    cell(row, pkg.session_id);
    cell(row, t(pkg.kind === "practice" ? "dash.kind.practice" : "dash.kind.real"));
    cell(row, String(pkg.manifest_version ?? ""));
    confirmCell(row, pkg);
    cell(row, String(pkg.fragment_count ?? ""));
    cell(row, pkg.imported_at ? formatTime(pkg.imported_at) : "");
    cell(row, t("dash.received_by_value", { imported: pkg.imported_by || "—", confirmed: pkg.confirmed_by || "—" }));
    cell(row, pkg.manifest_sha256 ? `${pkg.manifest_sha256.slice(0, 16)}…` : "—");
    cell(row, pkg.status === "replaced" ? "" : windowText(pkg, serverNow));
  }
  holder.replaceChildren(tableNode);
}

// The continuous backup's lag and the outbox (art. 27).
function renderServer(backup, outbox) {
  if (backup) {
    const at = backup.backup_at ? formatTime(backup.backup_at, { seconds: true, date: false }) : "—";
    let text = t("dash.backup_ok", { at });
    if (backup.rows_behind && !backup.backup_at) text = t("dash.backup_none", { rows: backup.rows_behind });
    else if (backup.rows_behind) text = t("dash.backup_lag", { rows: backup.rows_behind, seconds: Math.round(backup.lag_s) });
    $("dash-backup").textContent = text;
    $("dash-backup").className = backup.rows_behind && (!backup.backup_at || backup.lag_s > 10) ? "paused urgent" : "";
  }
  if (outbox) {
    let text = t("dash.outbox", { waiting: outbox.waiting, delivered: outbox.delivered });
    if (outbox.oldest_waiting_at) text += ` ${t("dash.outbox_oldest", { at: formatTime(outbox.oldest_waiting_at) })}`;
    $("dash-outbox").textContent = text;
  }
}

function renderRooms(status) {
  const rooms = new Map();
  for (const c of status.candidates) {
    const key = c.room_id || "—";
    const room = rooms.get(key) || { total: 0, logged: 0, submitted: 0, absent: 0 };
    room.total += 1;
    if (c.logged_in) room.logged += 1;
    if (c.submitted_at) room.submitted += 1;
    if (c.status === "absent") room.absent += 1;
    rooms.set(key, room);
  }
  const { tableNode, body } = table([
    t("dash.room"), t("dash.candidates"), t("dash.logged_in"), t("dash.submitted"), t("dash.absent"),
  ]);
  for (const [roomId, room] of rooms) {
    const row = body.insertRow();
    for (const value of [roomId, room.total, room.logged, room.submitted, room.absent]) {
      cell(row, String(value));
    }
  }
  $("dash-rooms").replaceChildren(tableNode);
  $("dash-paused").hidden = !status.paused;
}

function renderOutage(outage) {
  const node = $("dash-outage");
  node.hidden = !outage;
  if (!outage) return;
  const time = (at) => formatTime(at, { seconds: true, date: false });
  node.classList.toggle("urgent", !outage.reopened_at);
  node.textContent = outage.reopened_at
    ? t("dash.outage_closed", {
        session: outage.session_id,
        down: time(outage.down_at),
        back: time(outage.reopened_at),
        how: t(outage.reopened_by === "sealed-key" ? "dash.outage_sealed" : "dash.outage_ceremony"),
        attempts: outage.attempts ?? 0,
        seconds: Math.round((outage.granted_ms ?? 0) / 1000),
      })
    : t("dash.outage_open", { session: outage.session_id, down: time(outage.down_at) });
}

function formatBytes(bytes) {
  const gib = bytes / 2 ** 30;
  return gib >= 1 ? `${gib.toFixed(1)} GB` : `${Math.floor(bytes / 2 ** 20)} MB`;
}

// Free space where the database lives, in exam-minutes of answers; a warning below the
// threshold (a full disk refuses saves: the answers then wait on the candidates' computers).
function renderDisk(disk) {
  const node = $("dash-disk");
  node.hidden = !disk;
  if (!disk) return;
  const params = {
    free: formatBytes(disk.free_bytes),
    minutes: disk.exam_minutes ?? 0,
    candidates: disk.candidates,
  };
  const key = `dash.disk${disk.low ? "_low" : ""}${disk.exam_minutes === null ? "_no_candidates" : ""}`;
  node.textContent = t(key, params);
  node.classList.toggle("paused", disk.low);
  node.classList.toggle("urgent", disk.low);
}

async function refresh() {
  const [dashboard, status] = await Promise.all([
    staffApi.get("/api/v1/staff/dashboard"),
    staffApi.get("/api/v1/staff/status"),
  ]);
  renderOutage(dashboard.outage);
  renderDisk(dashboard.disk);
  $("dash-staff-problem").hidden = !dashboard.staff_problem;
  renderPackages(dashboard.packages, Date.parse(dashboard.server_time));
  renderServer(dashboard.backup, dashboard.outbox);
  renderRooms(status);
}

export async function enter() {
  await refresh();
  timer = setInterval(() => refresh().catch(() => {}), 10000);
}

export function leave() {
  clearInterval(timer);
}

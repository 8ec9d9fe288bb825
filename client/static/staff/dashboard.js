// The venue dashboard: packages (still encrypted) with time to their unlock window, the rooms
// with how many candidates are logged in, submitted or absent, and the latest restart of the
// server during a session: paused until the paper is open again, or the time given back; and
// the free disk space in exam-minutes, with a warning when it runs low.

import { formatTime, t } from "../common/i18n.js";
import { formatDuration } from "../common/http.js";
import { staffApi } from "./api.js";

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

function renderPackages(packages, serverNow) {
  const holder = $("dash-packages");
  if (!packages.length) {
    holder.textContent = t("dash.no_packages");
    return;
  }
  const { tableNode, body } = table([
    t("dash.session"), t("dash.kind"), t("dash.version"), t("dash.fragments"),
    t("dash.imported"), t("dash.window"),
  ]);
  for (const pkg of packages) {
    const row = body.insertRow();
    cell(row, pkg.session_id);
    cell(row, t(pkg.kind === "practice" ? "dash.kind.practice" : "dash.kind.real"));
    cell(row, String(pkg.manifest_version ?? ""));
    cell(row, String(pkg.fragment_count ?? ""));
    cell(row, pkg.imported_at ? formatTime(pkg.imported_at) : "");
    cell(row, windowText(pkg, serverNow));
  }
  holder.replaceChildren(tableNode);
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
  renderPackages(dashboard.packages, Date.parse(dashboard.server_time));
  renderRooms(status);
}

export async function enter() {
  await refresh();
  timer = setInterval(() => refresh().catch(() => {}), 10000);
}

export function leave() {
  clearInterval(timer);
}

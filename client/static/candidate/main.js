// The candidate's exam page: login -> waiting -> exam -> submitted.
//
// State lives on the server (answers, time, status) and, for what the server has not yet
// acknowledged, in the local IndexedDB journal. A reload, a crash or a reconnection resumes
// from the server's state plus the unacknowledged local entries; on another computer (a
// seat move) it resumes from the server alone.
//
// When the server goes away (a network drop, or the venue server restarting) the page keeps
// working on its own: answers go to the local journal, a banner says what is happening, and
// every 2 s it asks the server whether it is back. When the server answers again (the same
// process or a new one) with the exam running, everything held here is sent at once, with no
// reload. While the server reopens the paper after a restart the exam is shown paused, with
// the clock stopped.

import { formatTime, loadCatalogue, problemText, t } from "../common/i18n.js";
import { formatDuration } from "../common/http.js";
import { Api, ApiError, NetworkError } from "./api.js";
import { Autosave } from "./autosave.js";
import { Journal } from "./journal.js";
import { isAnswered, renderItem, retryAssets } from "./render.js";

const HEARTBEAT_MS = 15000;
const RECONNECT_MS = 2000; // how often a page that lost the server asks whether it is back
const WAIT_POLL_MS = 5000;
const WARNINGS_MS = [15 * 60000, 5 * 60000];
const WARNING_SHOWN_MS = 2 * 60000; // a time warning shows for two minutes of exam time, then goes

const api = new Api();
const state = {
  attempt: null,
  paper: null,
  flat: [], // [{item, section, number}] in display order
  answers: {}, // item token -> answer
  flags: new Set(),
  current: 0,
  autosave: null,
  warned: new Set(),
  timeUp: false,
  ticket: sessionStorage.getItem("cbt.ticket"),
  connection: "ok", // "ok", "offline" (no answer from the server), "paused" (restart)
  watcher: null, // the interval asking whether the server is back
  checking: false,
};

const $ = (id) => document.getElementById(id);

function show(screen) {
  for (const node of document.querySelectorAll(".screen")) node.hidden = node.id !== screen;
}

function showAlert(text) {
  const box = $("alert");
  box.textContent = text;
  box.hidden = !text;
}

// ---- login ---------------------------------------------------------------------------

function setupLogin() {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const ticket = $("ticket").value.trim();
    const idNumber = $("id-number").value.trim();
    const error = $("login-error");
    error.hidden = true;
    try {
      const reply = await api.login(ticket, idNumber);
      api.setToken(reply.token);
      state.ticket = ticket;
      sessionStorage.setItem("cbt.ticket", ticket);
      $("id-number").value = "";
      await enter(reply.attempt);
    } catch (err) {
      error.textContent =
        err instanceof ApiError ? `${t("login.failed")}: ${problemText(err)}` : t("login.network");
      error.hidden = false;
    }
  });
}

// ---- after login: waiting or exam -----------------------------------------------------

function isOver(attempt) {
  return ["submitted", "closed", "time_up"].includes(attempt.status) || Boolean(attempt.submitted_at);
}

// What a reload without network needs: the last attempt status, the paper and the answers.
function remember(key, value) {
  sessionStorage.setItem(`cbt.${key}`, JSON.stringify(value));
}
function recall(key) {
  const raw = sessionStorage.getItem(`cbt.${key}`);
  return raw ? JSON.parse(raw) : null;
}

async function enter(attempt) {
  try {
    state.attempt = attempt || (await api.attempt());
  } catch (err) {
    if (err instanceof ApiError || !recall("attempt") || !recall("paper")) throw err;
    state.attempt = recall("attempt");
    state.paper = recall("paper");
    return startExam({ offline: true });
  }
  remember("attempt", state.attempt);
  const name = state.attempt.name || state.attempt.candidate_name || "";
  $("candidate-name").textContent = name;
  $("waiting-name").textContent = name;
  if (isOver(state.attempt)) return showDone(state.attempt);
  if (isRestartPause(state.attempt) && recall("paper")) {
    // A reload while the server reopens the paper: carry on from what this page kept.
    state.paper = recall("paper");
    await startExam({ offline: true });
    return serverTrouble("paused");
  }
  if (!(await paperIfReady())) return waitForStart();
  await startExam();
}

function isRestartPause(attempt) {
  return attempt.status === "paused" && attempt.paused_reason === "restart";
}

// The paper is served once the exam has started, the paper is unlocked and an invigilator has
// checked the candidate's identity, which the status says ("waiting" or "identity_check"): asking earlier is refused with 409, and the browser would log
// that as an error on every poll.
async function paperIfReady() {
  if (["waiting", "identity_check"].includes(state.attempt.status)) return false;
  if (isRestartPause(state.attempt)) return false;
  return loadPaper();
}

async function loadPaper() {
  try {
    state.paper = await api.paper();
    remember("paper", state.paper);
    return true;
  } catch (err) {
    if (err instanceof ApiError && [403, 409, 425].includes(err.status)) return false;
    throw err;
  }
}

function waitForStart() {
  show("screen-waiting");
  const tick = () => {
    const startsAt = Date.parse(state.attempt.starts_at);
    $("starts-in").textContent = Number.isNaN(startsAt)
      ? "--:--"
      : formatDuration(startsAt - api.serverNow());
    $("waiting-paused").hidden = state.attempt.status !== "paused";
    // Art. 30: an invigilator checks the candidate's identity before the exam opens for them.
    $("waiting-identity").hidden = state.attempt.status !== "identity_check";
  };
  tick();
  const clock = setInterval(tick, 500);
  const poll = setInterval(async () => {
    try {
      state.attempt = await api.attempt();
      if (isOver(state.attempt)) {
        clearInterval(clock);
        clearInterval(poll);
        return showDone(state.attempt);
      }
      if (await paperIfReady()) {
        clearInterval(clock);
        clearInterval(poll);
        await startExam();
      }
    } catch (err) {
      handleFatal(err);
    }
  }, WAIT_POLL_MS);
}

// ---- the exam ---------------------------------------------------------------------------

function flatten(paper) {
  const flat = [];
  for (const section of paper.sections) {
    for (const item of section.items) flat.push({ item, section, number: flat.length + 1 });
  }
  return flat;
}

async function serverAnswers() {
  try {
    const saved = await api.savedResponses();
    return { responses: saved.responses || {}, acked: saved.acked_seq || 0 };
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
    return { responses: state.attempt.responses || {}, acked: state.attempt.acked_seq || 0 };
  }
}

async function resumeAnswers(journal, { offline }) {
  // The server's acknowledged state first (offline: the last snapshot this page kept),
  // then whatever this computer holds beyond it.
  if (offline) {
    state.answers = recall(`answers.${state.ticket}`) || {};
  } else {
    const saved = await serverAnswers();
    state.answers = { ...saved.responses };
    await journal.acknowledge(saved.acked);
  }
  for (const entry of await journal.unacknowledgedEntries()) state.answers[entry.item] = entry.answer;
  remember(`answers.${state.ticket}`, state.answers);
}

async function startExam({ offline = false } = {}) {
  state.flat = flatten(state.paper);
  const journal = await Journal.open(state.ticket);
  await resumeAnswers(journal, { offline });
  state.flags = new Set(JSON.parse(localStorage.getItem(`cbt.flags.${state.ticket}`) || "[]"));
  state.autosave = new Autosave(api, journal, {
    onStatus: showSaveStatus,
    onStopped: handleFatal,
    onTrouble: serverTrouble,
  });
  state.autosave.flush();
  if (offline) showSaveStatus("offline");
  show("screen-exam");
  $("timer").hidden = false;
  buildPalette();
  await goTo(Number(sessionStorage.getItem("cbt.current") || 0));
  setInterval(tickTimer, 500);
  setInterval(heartbeat, HEARTBEAT_MS);
}

function showSaveStatus(status) {
  const node = $("save-status");
  node.dataset.status = status;
  node.textContent = t(`save.${status}`);
}

function buildPalette() {
  const holder = $("palette-sections");
  holder.replaceChildren();
  $("palette-total").textContent = t("exam.of", { total: state.flat.length });
  let list = null;
  let lastSection = null;
  state.flat.forEach((entry, index) => {
    if (entry.section !== lastSection) {
      lastSection = entry.section;
      const title = document.createElement("h3");
      title.textContent = entry.section.title;
      list = document.createElement("div");
      list.className = "palette-grid";
      holder.append(title, list);
    }
    const button = document.createElement("button");
    button.type = "button";
    button.className = "palette-item";
    button.dataset.index = String(index);
    button.textContent = String(entry.number);
    button.addEventListener("click", () => goTo(index, { focus: true }));
    list.append(button);
  });
  refreshPalette();
}

function refreshPalette() {
  for (const button of document.querySelectorAll(".palette-item")) {
    const entry = state.flat[Number(button.dataset.index)];
    const answered = isAnswered(entry.item, state.answers[entry.item.id]);
    const flagged = state.flags.has(entry.item.id);
    button.classList.toggle("answered", answered);
    button.classList.toggle("flagged", flagged);
    button.classList.toggle("current", Number(button.dataset.index) === state.current);
    const status = [answered ? t("exam.legend_answered") : t("exam.legend_unanswered")];
    if (flagged) status.push(t("exam.legend_flagged"));
    button.setAttribute("aria-label", `${t("exam.item", { n: entry.number })}: ${status.join(", ")}`);
    if (Number(button.dataset.index) === state.current) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

async function goTo(index, { focus = false } = {}) {
  state.current = Math.max(0, Math.min(state.flat.length - 1, index));
  sessionStorage.setItem("cbt.current", String(state.current));
  const entry = state.flat[state.current];
  // The buttons first: nothing below (an image from a server that went away) may hold them.
  $("prev-item").disabled = state.current === 0;
  $("next-item").disabled = state.current === state.flat.length - 1;
  $("section-title").textContent = entry.section.title;
  $("section-instructions").innerHTML = entry.section.instructions || "";
  await renderItem($("item"), {
    item: entry.item,
    number: entry.number,
    answer: state.answers[entry.item.id],
    api,
    onChange: (answer) => answerChanged(entry.item, answer),
  });
  const flagged = state.flags.has(entry.item.id);
  $("flag-item").textContent = flagged ? t("exam.unflag") : t("exam.flag");
  $("flag-item").setAttribute("aria-pressed", String(flagged));
  refreshPalette();
  // After moving to another item, keyboard users continue from its heading.
  if (focus) $("item-heading").focus();
}

function answerChanged(item, answer) {
  state.answers[item.id] = answer;
  remember(`answers.${state.ticket}`, state.answers);
  refreshPalette();
  state.autosave.change(item.id, answer);
}

function toggleFlag() {
  const id = state.flat[state.current].item.id;
  if (state.flags.has(id)) state.flags.delete(id);
  else state.flags.add(id);
  localStorage.setItem(`cbt.flags.${state.ticket}`, JSON.stringify([...state.flags]));
  goTo(state.current);
}

// ---- time -------------------------------------------------------------------------------

function tickTimer() {
  const attempt = state.attempt;
  const paused = attempt.status === "paused";
  const restart = isRestartPause(attempt);
  const offline = state.connection === "offline";
  $("paused-banner").hidden = !paused || restart;
  $("restart-banner").hidden = !restart || offline;
  $("offline-banner").hidden = !offline;
  const left = paused ? attempt.time_left_ms : Date.parse(attempt.ends_at) - api.serverNow();
  $("time-left").textContent = formatDuration(left);
  $("timer").classList.toggle("low", left <= WARNINGS_MS[1]);
  for (const threshold of WARNINGS_MS) {
    const text = t(threshold === WARNINGS_MS[0] ? "exam.warning_15" : "exam.warning_5");
    // A warning past its two minutes is taken down (the 15-minute one must not still say so at
    // 11), and one whose moment passed before this page saw it is not shown late.
    if (left <= threshold - WARNING_SHOWN_MS && $("alert").textContent === text) showAlert("");
    if (left <= threshold && left > Math.max(0, threshold - WARNING_SHOWN_MS) && !state.warned.has(threshold)) {
      state.warned.add(threshold);
      showAlert(text);
    }
  }
  const opensAt = Date.parse(attempt.submit_opens_at);
  const canSubmit = !Number.isNaN(opensAt) && api.serverNow() >= opensAt;
  $("submit-button").hidden = !canSubmit;
  $("submit-opens").textContent = canSubmit
    ? ""
    : t("exam.submit_opens", { time: formatDuration(opensAt - api.serverNow()) });
  // Only a server that answers can say time is up (one that was away gives the time back).
  if (left <= 0 && !paused && !state.timeUp && state.connection === "ok") timeUp();
}

async function timeUp() {
  // The server closes the attempt with what it has acknowledged; send what we still hold
  // and let the server decide. Offline, keep trying: the flush retries on its own.
  state.timeUp = true;
  showAlert(t("exam.time_up"));
  await state.autosave.flush();
  await refreshAttempt();
}

async function refreshAttempt() {
  try {
    state.attempt = await api.attempt();
    remember("attempt", state.attempt);
    if (isOver(state.attempt)) {
      state.autosave?.stop();
      showDone(state.attempt);
    } else {
      state.timeUp = false;
    }
  } catch (err) {
    handleFatal(err);
  }
}

async function heartbeat() {
  if (state.watcher) return; // the watcher asks more often meanwhile
  try {
    const reply = await api.heartbeat();
    applyAttempt(reply);
    if (reply && isOver(reply)) {
      state.autosave.stop();
      showDone(reply);
    } else if (reply && isRestartPause(reply)) {
      serverTrouble("paused");
    }
  } catch (err) {
    if (err instanceof NetworkError) serverTrouble("offline");
    else handleFatal(err);
  }
}

function applyAttempt(reply) {
  if (!reply || !reply.ends_at) return;
  state.attempt = { ...state.attempt, ...reply };
  remember("attempt", state.attempt);
}

// ---- when the server goes away and comes back ----------------------------------------------

// Something could not reach the server, or the server says the exam is paused while it
// reopens the paper: say so, and ask every RECONNECT_MS whether it is back.
function serverTrouble(kind) {
  state.connection = kind;
  if (kind === "paused") showSaveStatus("paused");
  tickTimer();
  if (!state.watcher) state.watcher = setInterval(checkServer, RECONNECT_MS);
}

async function checkServer() {
  if (state.checking) return;
  state.checking = true;
  try {
    const reply = await api.heartbeat();
    applyAttempt(reply);
    if (isOver(reply)) {
      stopWatching();
      state.autosave.stop();
      showDone(reply);
      return;
    }
    if (isRestartPause(reply) || !reply.paper_ready) {
      // The server is up, the paper not yet open again: the clock stands still meanwhile.
      state.connection = "paused";
      showSaveStatus("paused");
      return;
    }
    // Back with the exam running (the same process or a new one): send what this computer
    // holds now, and fetch again any image that could not be fetched while it was away.
    stopWatching();
    state.connection = "ok";
    await state.autosave.retryNow();
    await retryAssets($("item"), api);
  } catch (err) {
    if (err instanceof ApiError) handleFatal(err);
    else state.connection = "offline";
  } finally {
    state.checking = false;
    tickTimer();
  }
}

function stopWatching() {
  clearInterval(state.watcher);
  state.watcher = null;
}

// ---- submit -------------------------------------------------------------------------------

function openConfirm() {
  const unanswered = state.flat.filter((e) => !isAnswered(e.item, state.answers[e.item.id]));
  $("confirm-summary").textContent = unanswered.length
    ? t("confirm.unanswered")
    : t("confirm.all_answered");
  const list = $("confirm-unanswered");
  list.replaceChildren();
  for (const entry of unanswered) {
    const li = document.createElement("li");
    li.textContent = t("exam.item", { n: entry.number });
    list.append(li);
  }
  $("confirm-error").hidden = true;
  $("confirm-dialog").showModal();
  $("confirm-cancel").focus();
}

async function confirmSubmit() {
  const button = $("confirm-ok");
  button.disabled = true;
  try {
    const flushed = await state.autosave.flush();
    if (!flushed) throw new Error(t($("save-status").dataset.status === "storage" ? "save.storage" : "save.offline"));
    const receipt = await api.submit();
    state.autosave.stop();
    $("confirm-dialog").close();
    showDone({ ...state.attempt, ...receipt, status: "submitted" });
  } catch (err) {
    $("confirm-error").textContent = `${t("confirm.failed")}: ${problemText(err)}`;
    $("confirm-error").hidden = false;
  } finally {
    button.disabled = false;
  }
}

function showDone(attempt) {
  stopWatching();
  for (const id of ["paused-banner", "restart-banner", "offline-banner"]) $(id).hidden = true;
  $("timer").hidden = true;
  showAlert("");
  $("done-time").textContent = attempt.submitted_at
    ? formatTime(attempt.submitted_at, { seconds: true })
    : "";
  $("done-receipt").textContent = attempt.receipt || "";
  $("done-receipt-code").textContent = attempt.receipt_code || "";
  $("done-receipt-note").hidden = !attempt.receipt_code;
  if (!attempt.receipt) $("done-message").textContent = t("done.closed");
  show("screen-done");
}

// ---- errors that end the page's session -------------------------------------------------------

function handleFatal(err) {
  if (!(err instanceof ApiError)) return; // network trouble: keep going offline
  if (err.status === 401) {
    state.autosave?.stop();
    api.setToken(null);
    showAlert(err.slug === "token-replaced" ? t("session.replaced") : t("session.expired"));
    show("screen-login");
    return;
  }
  if (err.status === 409) {
    refreshAttempt();
    return;
  }
  showAlert(`${t("save.rejected")} (${problemText(err)})`);
}

// ---- page set-up ----------------------------------------------------------------------------------

function setupControls() {
  $("prev-item").addEventListener("click", () => goTo(state.current - 1, { focus: true }));
  $("next-item").addEventListener("click", () => goTo(state.current + 1, { focus: true }));
  $("flag-item").addEventListener("click", toggleFlag);
  $("submit-button").addEventListener("click", openConfirm);
  $("confirm-cancel").addEventListener("click", () => $("confirm-dialog").close());
  $("confirm-ok").addEventListener("click", confirmSubmit);
  const scale = () => Number(localStorage.getItem("cbt.fontScale") || 1);
  const setScale = (value) => {
    const clamped = Math.min(1.6, Math.max(0.8, value));
    localStorage.setItem("cbt.fontScale", String(clamped));
    document.documentElement.style.setProperty("--font-scale", String(clamped));
  };
  setScale(scale());
  $("font-smaller").addEventListener("click", () => setScale(scale() - 0.1));
  $("font-larger").addEventListener("click", () => setScale(scale() + 0.1));
  // Exam software discourages copying item text; answers in inputs stay editable.
  for (const kind of ["copy", "cut", "contextmenu", "dragstart"]) {
    $("item").addEventListener(kind, (event) => {
      if (!event.target.closest("input, textarea")) event.preventDefault();
    });
  }
}

async function main() {
  loadCatalogue();
  setupLogin();
  setupControls();
  if (!api.token || !state.ticket) {
    show("screen-login");
    $("ticket").focus();
    return;
  }
  try {
    await enter(null);
  } catch (err) {
    show("screen-login");
    handleFatal(err);
  }
}

main();

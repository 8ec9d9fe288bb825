// The staff console: sign in, then four views (dashboard, unlock ceremony, room monitor,
// audit log) chosen by the URL fragment, so every view is a link and the back button works.

import { loadCatalogue, problemText, t } from "../common/i18n.js";
import { ApiError } from "../common/http.js";
import { staffApi } from "./api.js";
import * as audit from "./audit.js";
import * as ceremony from "./ceremony.js";
import * as dashboard from "./dashboard.js";
import * as monitor from "./monitor.js";

const VIEWS = { dashboard, ceremony, monitor, audit };
const $ = (id) => document.getElementById(id);
let active = null;

export function showAlert(text) {
  $("alert").textContent = text || "";
  $("alert").hidden = !text;
}

export function describe(err) {
  return err instanceof ApiError ? problemText(err) : String(err.message || err);
}

function showView(name) {
  for (const node of document.querySelectorAll(".view")) node.hidden = node.id !== `view-${name}`;
  for (const link of document.querySelectorAll("#tabs a")) {
    if (link.dataset.tab === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

// Roles allowed per view where the API limits them (the server's rule, in the page): a view
// not listed is for every role.
const VIEW_ROLES = JSON.parse($("view-roles").textContent);

function mayOpen(name) {
  return !(name in VIEW_ROLES) || VIEW_ROLES[name].includes(staffApi.me.role);
}

async function route() {
  if (!staffApi.me) return;
  const wanted = location.hash.slice(1);
  const name = wanted in VIEWS && mayOpen(wanted) ? wanted : "dashboard";
  if (active) active.leave?.();
  active = VIEWS[name];
  showAlert("");
  showView(name);
  try {
    await active.enter();
  } catch (err) {
    handleError(err);
  }
}

export function handleError(err) {
  if (err instanceof ApiError && err.status === 401) {
    staffApi.me = null;
    signedOut();
    return;
  }
  showAlert(`${t("common.error")}: ${describe(err)}`);
}

function signedIn() {
  const me = staffApi.me;
  $("staff-who").textContent = `${me.name || me.login} · ${t(`staff.role.${me.role}`)}`;
  for (const link of document.querySelectorAll("#tabs a")) link.hidden = !mayOpen(link.dataset.tab);
  $("tabs").hidden = false;
  $("sign-out").hidden = false;
  route();
}

function signedOut() {
  if (active) active.leave?.();
  active = null;
  $("staff-who").textContent = "";
  $("tabs").hidden = true;
  $("sign-out").hidden = true;
  showView("login");
  $("staff-login-name").focus();
}

function setup() {
  $("staff-login").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("staff-login-error");
    error.hidden = true;
    try {
      await staffApi.login($("staff-login-name").value.trim(), $("staff-password").value);
      $("staff-password").value = "";
      signedIn();
    } catch (err) {
      error.textContent = `${t("staff.login_failed")}: ${describe(err)}`;
      error.hidden = false;
    }
  });
  $("sign-out").addEventListener("click", async () => {
    try {
      await staffApi.logout();
    } finally {
      signedOut();
    }
  });
  window.addEventListener("hashchange", route);
  for (const view of Object.values(VIEWS)) view.setup?.();
}

async function main() {
  loadCatalogue();
  setup();
  // Only a tab that signed in holds the CSRF token every action needs (sessionStorage): any
  // other shows the sign-in form without asking the server, which would answer 401 and the
  // browser log it as an error.
  if (!staffApi.csrf) return signedOut();
  try {
    await staffApi.whoAmI();
    signedIn();
  } catch (err) {
    signedOut();
  }
}

main();

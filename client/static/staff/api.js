// The staff API client: the HttpOnly session cookie travels by itself; every state-changing
// request carries the CSRF token the login returned (double submit).

import { sendJson } from "../common/http.js";

const CSRF_KEY = "cbt.staffCsrf";

export const staffApi = {
  csrf: sessionStorage.getItem(CSRF_KEY),
  me: null,

  remember(reply) {
    this.csrf = reply.csrf_token || this.csrf;
    if (this.csrf) sessionStorage.setItem(CSRF_KEY, this.csrf);
    this.me = reply.staff || reply;
  },

  async call(method, path, body) {
    const headers = method === "GET" || !this.csrf ? {} : { "X-CSRF-Token": this.csrf };
    return (await sendJson(method, path, { body, headers, timeoutMs: 30000 })).data;
  },
  get(path) {
    return this.call("GET", path);
  },
  post(path, body = {}) {
    return this.call("POST", path, body);
  },

  async login(login, password) {
    this.remember(await this.post("/api/v1/staff/login", { login, password }));
  },
  async whoAmI() {
    this.remember(await this.get("/api/v1/staff/me"));
  },
  async logout() {
    await this.post("/api/v1/staff/logout");
    this.csrf = null;
    this.me = null;
    sessionStorage.removeItem(CSRF_KEY);
  },
};

// The candidate API client: bearer token, problem+json errors, and the clock offset.
//
// Every reply that carries `server_time` updates the offset between this computer's clock and
// the server's, so the timer shows the server's time even if this computer's clock is wrong,
// and keeps running from the last offset while the network is down.

import { ApiError, NetworkError, sendJson } from "../common/http.js";

export { ApiError, NetworkError };

const OFFSET_KEY = "cbt.clockOffsetMs";

export class Api {
  constructor() {
    this.token = sessionStorage.getItem("cbt.token");
    this.offsetMs = Number(sessionStorage.getItem(OFFSET_KEY) || 0);
  }

  setToken(token) {
    this.token = token;
    if (token) sessionStorage.setItem("cbt.token", token);
    else sessionStorage.removeItem("cbt.token");
  }

  serverNow() {
    return Date.now() + this.offsetMs;
  }

  async request(method, path, body, { timeoutMs = 8000 } = {}) {
    const headers = this.token ? { Authorization: `Bearer ${this.token}` } : {};
    const { data, sentAt, receivedAt } = await sendJson(method, path, { body, headers, timeoutMs });
    this.measureOffset(data, sentAt, receivedAt);
    return data;
  }

  measureOffset(data, sentAt, receivedAt) {
    const serverTime = data && (data.server_time || data.attempt?.server_time);
    if (!serverTime) return;
    // The server read its clock about half-way through the round trip.
    this.offsetMs = Date.parse(serverTime) - (sentAt + receivedAt) / 2;
    sessionStorage.setItem(OFFSET_KEY, String(this.offsetMs));
  }

  async fetchAsset(name, { timeoutMs = 15000 } = {}) {
    // A bounded wait: a server that went away must not hold the item (and its buttons) up.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const response = await fetch(`/api/v1/attempt/assets/${encodeURIComponent(name)}`, {
        headers: { Authorization: `Bearer ${this.token}` },
        signal: controller.signal,
      });
      if (!response.ok) throw new ApiError(response.status, null);
      return URL.createObjectURL(await response.blob());
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw new NetworkError(String(err));
    } finally {
      clearTimeout(timer);
    }
  }

  login(ticket, idNumber) {
    return this.request("POST", "/api/v1/candidate/login", { ticket, id_number: idNumber });
  }
  attempt() {
    return this.request("GET", "/api/v1/attempt");
  }
  paper() {
    return this.request("GET", "/api/v1/attempt/paper", undefined, { timeoutMs: 20000 });
  }
  savedResponses() {
    return this.request("GET", "/api/v1/attempt/responses");
  }
  save(seq, responses) {
    return this.request("PUT", "/api/v1/attempt/responses", { seq, responses });
  }
  heartbeat() {
    return this.request("POST", "/api/v1/attempt/heartbeat", {});
  }
  submit() {
    return this.request("POST", "/api/v1/attempt/submit", {});
  }
}

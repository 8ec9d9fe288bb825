// Autosave: local journal first, then the server in batches.
//
// A change is written to IndexedDB at once; about 1 s after a change (and at least every
// 10 s) pending entries are frozen into a batch and sent, batches strictly in seq order.
// A failure that can pass (no answer from the server, a 5xx, or the exam paused while the
// server reopens the paper) backs off (1, 2, 4, 5 s) and keeps everything local; the page is
// told (`onTrouble`) so it can watch for the server and call `retryNow` when it is back. A
// full disk on the server (503 storage-full) keeps everything local too and retries after the
// server's Retry-After. The visible status says saved / saving / offline / paused / storage. The server decides what an answer
// after the end of time means.

import { ApiError, NetworkError } from "./api.js";

const DEBOUNCE_MS = 1000;
const PERIODIC_MS = 10000;
const MAX_BACKOFF_MS = 5000;
// Refusals that say "not now" rather than "never": the answers wait on this computer.
const PAUSED_SLUGS = ["exam-paused", "paper-locked", "not-started"];

// The server's disk is full (503 storage-full): "not now", with a Retry-After.
const STORAGE_RETRY_MAX_MS = 30000;

export function isStorageFull(err) {
  return err instanceof ApiError && err.status === 503 && err.slug === "storage-full";
}

export function isPausedRefusal(err) {
  return err instanceof ApiError && err.status === 409 && PAUSED_SLUGS.includes(err.slug);
}

export class Autosave {
  constructor(api, journal, { onStatus, onStopped, onTrouble = () => {} }) {
    this.api = api;
    this.journal = journal;
    this.onStatus = onStatus;
    this.onStopped = onStopped;
    this.onTrouble = onTrouble;
    this.timer = null;
    this.flushing = null;
    this.failures = 0;
    this.stopped = false;
    this.dirty = false;
    // Paused while the server reopens the paper: no sending (each would be refused) until
    // the page sees the exam running again and calls retryNow.
    this.held = false;
    this.periodic = setInterval(() => this.flush(), PERIODIC_MS);
    window.addEventListener("online", () => this.flush());
  }

  async change(item, answer) {
    await this.journal.append(item, answer);
    this.dirty = true;
    if (this.failures === 0) this.onStatus("saving");
    this.schedule(DEBOUNCE_MS);
  }

  schedule(delayMs) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), delayMs);
  }

  // Send everything pending; resolves true when nothing is left unacknowledged.
  flush() {
    if (this.stopped || this.held) return Promise.resolve(false);
    if (!this.flushing) {
      this.flushing = this.sendPending().finally(() => {
        this.flushing = null;
      });
    }
    return this.flushing;
  }

  async sendPending() {
    this.dirty = false;
    await this.journal.freezeBatch();
    const batches = await this.journal.pendingBatches();
    try {
      for (const batch of batches) {
        this.onStatus("saving");
        const reply = await this.api.save(batch.seq, batch.responses);
        await this.journal.acknowledge(reply.acked_seq);
      }
    } catch (err) {
      return this.failed(err);
    }
    this.failures = 0;
    if (this.dirty) {
      this.schedule(DEBOUNCE_MS);
      return false;
    }
    this.onStatus("saved");
    return true;
  }

  // The server is back (the page saw it answer): send at once, whatever the backoff says.
  retryNow() {
    if (this.stopped) return Promise.resolve(false);
    this.held = false;
    this.failures = 0;
    clearTimeout(this.timer);
    return this.flush();
  }

  failed(err) {
    if (isStorageFull(err)) {
      // The server is up but its disk is full: nothing was stored. The answers stay on this
      // computer and go again when the server says (Retry-After), calmly, with no banner.
      this.failures += 1;
      this.onStatus("storage");
      const waitMs = 1000 * (Number(err.problem.retry_after_s) || 5);
      this.schedule(Math.min(STORAGE_RETRY_MAX_MS, Math.max(MAX_BACKOFF_MS, waitMs)));
      return false;
    }
    const paused = isPausedRefusal(err);
    if (paused || err instanceof NetworkError || (err instanceof ApiError && err.status >= 500)) {
      this.failures += 1;
      const status = paused ? "paused" : "offline";
      this.onStatus(status);
      this.onTrouble(status);
      if (paused) this.held = true;
      else this.schedule(Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.failures - 1)));
      return false;
    }
    // The server refused for good (attempt closed or submitted, login replaced): the local
    // journal keeps the entries as evidence, and the page shows the server's decision.
    this.stop();
    this.onStopped(err);
    return false;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.periodic);
  }
}

// The local journal in IndexedDB: every change a candidate makes is written here, with its
// seq, *before* anything is sent, so a network drop, a reload or a browser crash loses nothing.
//
// Stores (all keyed by ticket, so two candidates on one PC never mix):
//   entries  {ticket, seq, item, answer}     one per change, until the server acknowledges it
//   batches  {ticket, seq, responses}        frozen groups of entries, sent as one save;
//                                            a batch never changes once made, so resending the
//                                            same seq always carries the same content
//   meta     {ticket, lastSeq, batchedSeq}   the seq counter and how far entries are batched

const DB_NAME = "cbt-journal";
const DB_VERSION = 1;

function promisify(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
    tx.onerror = () => reject(tx.error);
  });
}

function range(ticket, fromSeq = 0, toSeq = Number.MAX_SAFE_INTEGER) {
  return IDBKeyRange.bound([ticket, fromSeq], [ticket, toSeq]);
}

export class Journal {
  static async open(ticket) {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      db.createObjectStore("entries", { keyPath: ["ticket", "seq"] });
      db.createObjectStore("batches", { keyPath: ["ticket", "seq"] });
      db.createObjectStore("meta", { keyPath: "ticket" });
    };
    return new Journal(await promisify(request), ticket);
  }

  constructor(db, ticket) {
    this.db = db;
    this.ticket = ticket;
  }

  async meta(tx) {
    const found = await promisify(tx.objectStore("meta").get(this.ticket));
    return found || { ticket: this.ticket, lastSeq: 0, batchedSeq: 0 };
  }

  // Record one change; resolves once it is durable in IndexedDB, with its seq.
  async append(item, answer) {
    const tx = this.db.transaction(["meta", "entries"], "readwrite");
    const meta = await this.meta(tx);
    meta.lastSeq += 1;
    tx.objectStore("entries").put({ ticket: this.ticket, seq: meta.lastSeq, item, answer });
    tx.objectStore("meta").put(meta);
    await done(tx);
    return meta.lastSeq;
  }

  // Freeze every entry not yet in a batch into one batch (latest answer per item wins).
  async freezeBatch() {
    const tx = this.db.transaction(["meta", "entries", "batches"], "readwrite");
    const meta = await this.meta(tx);
    const entries = await promisify(
      tx.objectStore("entries").getAll(range(this.ticket, meta.batchedSeq + 1)),
    );
    if (entries.length > 0) {
      const responses = {};
      for (const entry of entries) responses[entry.item] = entry.answer;
      const seq = entries[entries.length - 1].seq;
      tx.objectStore("batches").put({ ticket: this.ticket, seq, responses });
      meta.batchedSeq = seq;
      tx.objectStore("meta").put(meta);
    }
    await done(tx);
  }

  async pendingBatches() {
    const tx = this.db.transaction("batches", "readonly");
    return promisify(tx.objectStore("batches").getAll(range(this.ticket)));
  }

  async unacknowledgedEntries() {
    const tx = this.db.transaction("entries", "readonly");
    return promisify(tx.objectStore("entries").getAll(range(this.ticket)));
  }

  // The server holds everything up to `ackedSeq`: forget it here, and never reuse those seqs.
  async acknowledge(ackedSeq) {
    const tx = this.db.transaction(["meta", "entries", "batches"], "readwrite");
    const meta = await this.meta(tx);
    tx.objectStore("entries").delete(range(this.ticket, 0, ackedSeq));
    tx.objectStore("batches").delete(range(this.ticket, 0, ackedSeq));
    meta.lastSeq = Math.max(meta.lastSeq, ackedSeq);
    meta.batchedSeq = Math.max(meta.batchedSeq, ackedSeq);
    tx.objectStore("meta").put(meta);
    await done(tx);
  }
}

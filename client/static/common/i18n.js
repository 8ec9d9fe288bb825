// The string catalogue of the page's language, rendered by the server into a JSON data
// block (<script type="application/json" id="i18n">), so no string lives in the code.
// Times are shown in the session's local time zone, which the server names in
// <meta name="cbt-time-zone"> (the venue's `time_zone` setting).

let catalogue = {};

export function loadCatalogue() {
  const block = document.getElementById("i18n");
  catalogue = block ? JSON.parse(block.textContent) : {};
}

// t("exam.item", {n: 3}) -> "第 3 题"; a missing key shows itself, so it is noticed.
export function t(key, params = {}) {
  const text = catalogue[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

export function has(key) {
  return key in catalogue;
}

function timeZone() {
  const meta = document.querySelector('meta[name="cbt-time-zone"]');
  return meta?.content || undefined;
}

// An ISO-8601 instant as people read it, in the page's language and the session's zone:
// "11月7日 09:05" / "Nov 7, 09:05"; with `seconds`, "09:05:30".
export function formatTime(iso, { seconds = false, date = true } = {}) {
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return String(iso ?? "");
  const options = { timeZone: timeZone(), hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (seconds) options.second = "2-digit";
  if (date) Object.assign(options, { month: "short", day: "numeric" });
  return new Intl.DateTimeFormat(document.documentElement.lang || undefined, options).format(moment);
}

// What a refusal (problem+json) says in the page's language: the catalogue's
// `problem.<slug>` (or `problem.<slug>.<reason>`) filled with the problem's parameters, times
// (`*_at`) formatted for people; the server's English `detail` only if the catalogue lacks it.
export function problemText(err) {
  const problem = err?.problem || {};
  const slug = err?.slug;
  const keys = problem.reason ? [`problem.${slug}.${problem.reason}`, `problem.${slug}`] : [`problem.${slug}`];
  const key = slug && keys.find((candidate) => has(candidate));
  if (!key) return err?.message || String(err);
  const params = {};
  for (const [name, value] of Object.entries(problem)) {
    params[name] = name.endsWith("_at") && typeof value === "string" ? formatTime(value) : value;
  }
  return t(key, params);
}

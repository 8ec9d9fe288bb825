// The string catalogue of the page's language, rendered by the server into a JSON data
// block (<script type="application/json" id="i18n">), so no string lives in the code.

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

// Rendering one item of the candidate's variant, and reading the answer back from the form.
//
// The paper comes from the server already in this candidate's order, with opaque tokens for
// items and options; labels A/B/C/D follow display position. Stems are sanitised HTML
// (checked centrally, and the page's CSP allows no script); images and audio referenced as
// `asset:NAME` are fetched with the candidate's token and shown from blob: URLs.

import { t } from "../common/i18n.js";

export function isAnswered(item, answer) {
  if (answer === undefined || answer === null) return false;
  if (item.type === "essay") return String(answer).trim().length > 0;
  if (item.type === "fill_blank") return answer.some((text) => String(text).trim().length > 0);
  return answer.length > 0;
}

function blankCount(item) {
  if (Array.isArray(item.blanks)) return item.blanks.length;
  return Number(item.blanks || 1);
}

function element(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// `src="asset:NAME"` becomes `data-asset="NAME"` before the HTML is inserted, so the browser
// never tries to load the asset: scheme; the real bytes come with the candidate's token.
function withDeferredAssets(html) {
  return String(html || "").replace(/\bsrc=(["'])asset:/g, "data-asset=$1");
}

async function resolveAssets(container, api, selector = "img[data-asset], audio[data-asset]") {
  for (const media of container.querySelectorAll(selector)) {
    const name = media.dataset.asset;
    try {
      media.src = await api.fetchAsset(name);
      delete media.dataset.failed;
    } catch (err) {
      media.alt = `[${name}]`;
      media.dataset.failed = "true"; // fetched again when the server is back
    }
  }
}

// The images and audio of the item on screen that could not be fetched (the server was
// away), fetched again without redrawing the item (an answer being typed keeps its caret).
export function retryAssets(container, api) {
  return resolveAssets(container, api, "[data-asset][data-failed]");
}

function choiceControls(item, answer, onChange) {
  const multiple = item.type === "multiple_choice";
  const chosen = new Set(answer || []);
  const group = element("div", { class: "options", role: multiple ? "group" : "radiogroup" });
  item.options.forEach((option, index) => {
    const id = `opt-${option.id}`;
    const input = element("input", {
      type: multiple ? "checkbox" : "radio",
      name: `item-${item.id}`,
      id,
      value: option.id,
    });
    input.checked = chosen.has(option.id);
    const label = element("label", { for: id, class: "option" });
    const letter = option.label || String.fromCharCode(65 + index);
    const text = element("span", { class: "option-text" });
    if (item.type === "true_false" && !option.html) {
      text.textContent = t(index === 0 ? "exam.true" : "exam.false");
    } else {
      text.innerHTML = withDeferredAssets(option.html);
    }
    label.append(element("span", { class: "letter", text: letter }), text);
    group.append(element("div", { class: "option-row" }, [input, label]));
  });
  group.addEventListener("change", () => {
    const picked = [...group.querySelectorAll("input:checked")].map((node) => node.value);
    onChange(picked);
  });
  return group;
}

function blankControls(item, answer, onChange) {
  const count = blankCount(item);
  const values = Array.from({ length: count }, (_, i) => (answer && answer[i]) || "");
  const wrapper = element("div", { class: "blanks" });
  for (let i = 0; i < count; i += 1) {
    const id = `blank-${item.id}-${i}`;
    const input = element("input", { id, type: "text", autocomplete: "off", spellcheck: "false" });
    input.value = values[i];
    input.addEventListener("input", () => {
      values[i] = input.value;
      onChange([...values]);
    });
    wrapper.append(element("label", { for: id, text: t("exam.blank", { n: i + 1 }) }), input);
  }
  return wrapper;
}

function essayControls(item, answer, onChange) {
  const id = `essay-${item.id}`;
  const area = element("textarea", { id, rows: "14", spellcheck: "false" });
  if (item.max_length) area.setAttribute("maxlength", String(item.max_length));
  area.value = answer || "";
  const counter = element("p", { class: "muted counter", "aria-live": "polite" });
  const count = () => {
    const n = [...area.value].length;
    counter.textContent = item.max_length
      ? t("exam.essay_limit", { count: n, max: item.max_length })
      : t("exam.essay_count", { count: n });
  };
  count();
  area.addEventListener("input", () => {
    count();
    onChange(area.value);
  });
  return element("div", { class: "essay" }, [
    element("label", { for: id, text: t("exam.answer_label") }),
    area,
    counter,
  ]);
}

export async function renderItem(container, { item, number, answer, api, onChange }) {
  container.replaceChildren();
  const heading = element("h2", { id: "item-heading", tabindex: "-1" });
  heading.textContent = `${t("exam.item", { n: number })} ${t("exam.points", { points: item.points })}`;
  const stem = element("div", { class: "stem" });
  stem.innerHTML = withDeferredAssets(item.stem);
  container.append(heading, stem);
  container.setAttribute("aria-labelledby", "item-heading");
  let controls;
  if (item.type === "fill_blank") controls = blankControls(item, answer, onChange);
  else if (item.type === "essay") controls = essayControls(item, answer, onChange);
  else controls = choiceControls(item, answer, onChange);
  const fieldset = element("fieldset", { class: "answer" });
  fieldset.append(element("legend", { class: "visually-hidden", text: heading.textContent }), controls);
  container.append(fieldset);
  await resolveAssets(container, api);
}

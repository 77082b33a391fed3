// The live rule editor of the Criterion and named-condition forms.
// As the writer types, the rule is checked (debounced POST to the check endpoint, the same checks as on
// save): every problem, with its line, column and a caret under the place, is listed under the textarea
// in an aria-live region, with the sentence screeners will read once it is valid. Names of variables,
// value sets and units of the version's dictionary are offered in a list under the textarea
// (arrows to move, Enter or Tab to take, Escape to close). Kept out of the HTML for the
// Content-Security-Policy; the session's CSRF token goes in a header.
(() => {
  const config = document.getElementById("rule-editor");
  const area = document.getElementById("rule") || document.getElementById("condition");
  if (!config || !area) return;
  const versionField = document.getElementById("version");
  const kindField = document.getElementById("kind");
  const DELAY = 300;
  let words = { variables: [], value_sets: [], units: [] };
  let wordsFor = null;
  let timer = null;
  let sent = 0;

  // -- the report under the textarea -----------------------------------------------------------
  const report = document.createElement("div");
  report.id = "rule-report";
  report.className = "rule-report";
  report.setAttribute("aria-live", "polite");
  const listbox = document.createElement("ul");
  listbox.id = "rule-suggestions";
  listbox.className = "rule-suggestions";
  listbox.setAttribute("role", "listbox");
  listbox.setAttribute("aria-label", "Suggestions");
  listbox.hidden = true;
  area.insertAdjacentElement("afterend", report);
  area.insertAdjacentElement("afterend", listbox);
  area.setAttribute("aria-describedby", [area.getAttribute("aria-describedby"), report.id].filter(Boolean).join(" "));
  area.setAttribute("aria-autocomplete", "list");
  area.setAttribute("aria-controls", listbox.id);
  area.setAttribute("autocomplete", "off");

  const versionId = () => (versionField ? versionField.value : "") || "";
  const kind = () => (kindField ? kindField.value || null : null);

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function show(answer) {
    report.replaceChildren();
    const problems = answer.problems || [];
    if (problems.length) {
      const heading = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
      report.append(element("p", "rule-report-head", heading));
      const list = element("ul", "rule-problems");
      for (const problem of problems) {
        const item = element("li", `rule-problem ${problem.source || ""}`);
        const where = problem.line ? `Line ${problem.line}, column ${problem.column}: ` : "Data dictionary: ";
        const hint = problem.suggestion ? ` (did you mean \`${problem.suggestion}\`?)` : "";
        item.append(element("span", "", where + problem.message + hint));
        if (problem.context) item.append(element("pre", "rule-caret", problem.context));
        list.append(item);
      }
      report.append(list);
      // On a narrow screen a long line scrolls in its box: bring each caret into view.
      list.querySelectorAll(".rule-caret").forEach((pre) => {
        const [line, marks] = pre.textContent.split("\n").slice(-2);
        const share = line.length ? marks.length / line.length : 0;
        pre.scrollLeft = Math.max(0, share * pre.scrollWidth - pre.clientWidth / 2);
      });
    }
    if (answer.preview) {
      const head = kindField ? "Screeners will read:" : "The condition reads:";
      report.append(element("p", "rule-preview-head", head));
      report.append(element("p", "rule-preview", answer.preview));
    }
    if (!problems.length && !answer.preview) report.append(element("p", "rule-ok", ""));
    area.setAttribute("aria-invalid", problems.some((p) => p.source === "rule") ? "true" : "false");
  }

  async function check() {
    if (!versionId()) return;
    const mine = ++sent;
    try {
      const response = await fetch(config.dataset.checkUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": config.dataset.csrf },
        body: JSON.stringify({ version_id: versionId(), kind: kind(), text: area.value }),
      });
      const answer = await response.json().catch(() => ({}));
      if (mine !== sent) return; // a later check is on its way: its answer is the one to show
      if (!response.ok) {
        const error = answer.error || {};
        const details = (error.errors || []).map((e) => `${e.field}: ${e.expected}`).join("; ");
        show({ problems: [{ source: "request", message: (error.message || `HTTP ${response.status}`) + (details ? ` (${details})` : "") }] });
        return;
      }
      show(answer);
    } catch (failure) {
      if (mine === sent) show({ problems: [{ source: "request", message: `The check could not run: ${failure.message}` }] });
    }
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(check, DELAY);
  }

  // -- completion ------------------------------------------------------------------------------
  async function loadWords() {
    const id = versionId();
    if (!id || id === wordsFor) return;
    wordsFor = id;
    const url = `${config.dataset.wordsUrl}?version_id=${encodeURIComponent(id)}`;
    const response = await fetch(url, { credentials: "same-origin" });
    if (response.ok) words = await response.json();
  }

  let options = [];
  let active = -1;
  let fragment = { start: 0, end: 0 };

  function candidates() {
    const before = area.value.slice(0, area.selectionStart);
    const unitPlace = before.match(/\d\s+([^\s,()]*)$/);
    if (unitPlace) {
      // After a number: the units of the nearest variable named before it, then any unit.
      const typed = unitPlace[1];
      const named = before.slice(0, before.length - unitPlace[0].length).match(/[a-z][a-z0-9_]*/g) || [];
      const variable = named.reverse().map((n) => words.variables.find((v) => v.name === n)).find(Boolean);
      const own = variable ? [variable.unit, ...(variable.units || []), variable.uln ? "x ULN" : null] : [];
      fragment = { start: before.length - typed.length, end: area.selectionStart };
      return [...new Set([...own.filter(Boolean), ...words.units])]
        .filter((u) => u.toLowerCase().startsWith(typed.toLowerCase()) && u !== typed)
        .map((u) => ({ value: u, hint: variable && own.includes(u) ? `unit of ${variable.name}` : "unit" }))
        .slice(0, 12);
    }
    const name = before.match(/[A-Za-z_][A-Za-z0-9_]*$/);
    if (!name) return [];
    const typed = name[0].toLowerCase();
    fragment = { start: before.length - name[0].length, end: area.selectionStart };
    const names = [
      ...words.variables.map((v) => ({ value: v.name, hint: v.label + (v.unit ? ` (${v.unit})` : "") })),
      ...words.value_sets.map((s) => ({ value: s.name, hint: `value set: ${s.label}` })),
    ];
    return names.filter((w) => w.value.startsWith(typed) && w.value !== typed).slice(0, 12);
  }

  function close() {
    listbox.hidden = true;
    listbox.replaceChildren();
    area.removeAttribute("aria-activedescendant");
    area.setAttribute("aria-expanded", "false");
    options = [];
    active = -1;
  }

  function highlight(index) {
    active = index;
    listbox.querySelectorAll("[role=option]").forEach((option, i) => {
      option.setAttribute("aria-selected", i === index ? "true" : "false");
      if (i === index) {
        area.setAttribute("aria-activedescendant", option.id);
        option.scrollIntoView({ block: "nearest" });
      }
    });
  }

  function suggest() {
    options = candidates();
    if (!options.length) return close();
    listbox.replaceChildren();
    options.forEach((option, i) => {
      const item = element("li", "rule-suggestion");
      item.id = `rule-suggestion-${i}`;
      item.setAttribute("role", "option");
      item.append(element("code", "", option.value), element("small", "", ` ${option.hint}`));
      item.addEventListener("mousedown", (event) => {
        event.preventDefault(); // keep the focus in the textarea
        take(i);
      });
      listbox.append(item);
    });
    listbox.hidden = false;
    area.setAttribute("aria-expanded", "true");
    highlight(0);
  }

  function take(index) {
    const option = options[index];
    if (!option) return;
    const text = area.value;
    area.value = text.slice(0, fragment.start) + option.value + text.slice(fragment.end);
    const caret = fragment.start + option.value.length;
    area.setSelectionRange(caret, caret);
    close();
    later();
  }

  area.addEventListener("keydown", (event) => {
    if (listbox.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      highlight((active + step + options.length) % options.length);
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      take(active);
    } else if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });
  area.addEventListener("input", () => {
    later();
    loadWords().then(suggest, close);
  });
  area.addEventListener("blur", close);
  if (kindField) kindField.addEventListener("change", later);
  if (versionField) versionField.addEventListener("change", () => { loadWords(); later(); });

  loadWords().catch(() => {});
  if (area.value.trim()) check();
})();

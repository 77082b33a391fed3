// Behaviour for our pages, kept out of the HTML so the Content-Security-Policy can forbid inline scripts.
document.querySelectorAll("[data-print]").forEach((button) => button.addEventListener("click", () => window.print()));

// The screening form follows the subject: a follow-up question is shown once an earlier answer makes it
// matter (data-show-when, derived from the rules by rules/relevance.py), hidden and left out of the submission
// otherwise. Without this script every question shows: the decision is the same either way.
(() => {
  const form = document.querySelector("form[data-relevance]");
  if (!form) return;
  const fields = [...form.querySelectorAll("[data-field]")];
  // A number, then the unit if typed ("2100 /µL"); a unit is folded as unit_key in screening_pages.py folds it.
  const TYPED = /^\s*([-+]?\d+(?:[.,]\d+)?)\s*(\S.*?)?\s*$/;
  const SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹";
  const plain = (power) => [...power].map((c) => (c === "⁻" ? "-" : SUPERSCRIPTS.indexOf(c))).join("");
  const unitKey = (label) => label.replace(/⁻?[⁰¹²³⁴⁵⁶⁷⁸⁹]+/g, (power) => `^${plain(power)}`)
    .replace(/\s+/g, "").toLowerCase().replace(/[μµ]/g, "u").replace(/×/g, "x");
  const control = (name) => form.elements.namedItem(name);
  // What later guards read from one question: its answer (and a lab value's ULN/LLN) in canonical units.
  const answers = (wrap) => {
    const name = wrap.dataset.field;
    const own = control(name);
    if (!own || own.value === "") return {};
    if (wrap.dataset.kind === "boolean") return own.value in { yes: 1, no: 1 } ? { [name]: own.value === "yes" } : {};
    if (wrap.dataset.kind !== "number") return { [name]: own.value };
    const factors = wrap.dataset.factors ? JSON.parse(wrap.dataset.factors) : {};
    const typed = (input) => (input ? TYPED.exec(input.value) : null);
    const ownUnit = typed(own) && typed(own)[2];
    const found = {};
    for (const key of [name, `${name}_uln`, `${name}_lln`]) {
      const match = typed(control(key));
      const unit = (match && match[2]) || ownUnit; // a limit without a unit is in the value's unit
      const factor = unit ? factors[unitKey(unit)] : 1;
      if (match && factor !== undefined) found[key] = parseFloat(match[1].replace(",", ".")) * factor;
    }
    return found;
  };
  const compare = {
    "==": (a, b) => a === b, "!=": (a, b) => a !== b, "<": (a, b) => a < b,
    "<=": (a, b) => a <= b, ">": (a, b) => a > b, ">=": (a, b) => a >= b,
  };
  // Kleene logic, as rules/ir.py evaluates: null is "not answered".
  const truth = (node, values) => {
    if (node.field !== undefined) {
      if (!(node.field in values) || (node.other !== undefined && !(node.other in values))) return null;
      const operand = node.other !== undefined ? values[node.other] * node.times : node.value;
      return compare[node.op](values[node.field], operand);
    }
    const results = node.items.map((item) => truth(item, values));
    const count = (v) => results.filter((r) => r === v).length;
    if (node.op === "not") return results[0] === null ? null : !results[0];
    if (node.op === "all") return count(false) ? false : count(null) ? null : true;
    if (node.op === "any") return count(true) ? true : count(null) ? null : false;
    if (count(true) >= node.count) return true; // at_least
    return count(true) + count(null) < node.count ? false : null;
  };
  // rules/relevance.py: asked when, somewhere the rules read it, no guard rules it out; a yes/no
  // follow-up (waits) also needs its earlier answer given.
  const lets = (guard, values) => {
    const t = truth(guard.node, values);
    return t === !guard.kills || (t === null && !guard.waits);
  };
  const asked = (occurrences, values) => occurrences.some((guards) => guards.every((g) => lets(g, values)));
  // The default unit beside a value steps aside once the screener types a unit of their own.
  const suffixes = () => {
    for (const suffix of form.querySelectorAll("[data-unit-suffix]")) {
      const match = TYPED.exec(control(suffix.closest("[data-field]").dataset.field).value);
      suffix.hidden = Boolean(match && match[2]);
    }
  };
  const update = () => {
    suffixes();
    const values = {};
    for (const wrap of fields) {
      const rule = wrap.dataset.showWhen ? JSON.parse(wrap.dataset.showWhen) : null;
      const show = !rule || asked(rule, values);
      wrap.hidden = !show;
      wrap.querySelectorAll("input, select, textarea").forEach((input) => { input.disabled = !show; });
      if (show) Object.assign(values, answers(wrap));
    }
    form.querySelectorAll("fieldset[data-section]").forEach((fieldset) => {
      fieldset.hidden = !fieldset.querySelector("[data-field]:not([hidden])");
    });
  };
  form.addEventListener("change", update);
  form.addEventListener("input", update);
  update();
  const firstError = form.querySelector("[aria-invalid=true]:not(:disabled)");
  if (firstError) firstError.focus();
})();

// Behaviour for our pages, kept out of the HTML so the Content-Security-Policy can forbid inline scripts.
document.querySelectorAll("[data-print]").forEach((button) => button.addEventListener("click", () => window.print()));

// The screening form follows the subject: a follow-up question is shown once an earlier answer makes it
// matter (data-show-when, derived from the rules by rules/relevance.py), hidden and left out of the submission
// otherwise. Without this script every question shows: the decision is the same either way.
(() => {
  const form = document.querySelector("form[data-relevance]");
  if (!form) return;
  const fields = [...form.querySelectorAll("[data-field]")];
  const NUMBER = /^\s*[-+]?\d+(?:[.,]\d+)?\s*$/;
  const control = (name) => form.elements.namedItem(name);
  // What later guards read from one question: its answer (and a lab value's ULN/LLN) in canonical units.
  const answers = (wrap) => {
    const name = wrap.dataset.field;
    const own = control(name);
    if (!own || own.value === "") return {};
    if (wrap.dataset.kind === "boolean") return own.value in { yes: 1, no: 1 } ? { [name]: own.value === "yes" } : {};
    if (wrap.dataset.kind !== "number") return { [name]: own.value };
    const factors = wrap.dataset.factors ? JSON.parse(wrap.dataset.factors) : {};
    const unit = control(`${name}__unit`);
    const factor = unit ? factors[unit.value] : 1;
    const found = {};
    for (const key of [name, `${name}_uln`, `${name}_lln`]) {
      const input = control(key);
      if (input && NUMBER.test(input.value) && factor !== undefined) {
        found[key] = parseFloat(input.value.replace(",", ".")) * factor;
      }
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
  const update = () => {
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

// Behaviour for our pages, kept out of the HTML so the Content-Security-Policy can forbid inline scripts.
document.querySelectorAll("[data-print]").forEach((button) => button.addEventListener("click", () => window.print()));

// The screening form follows the subject: a follow-up question is shown once an earlier answer makes it
// matter (data-show-when, derived from the rules by rules/relevance.py), hidden and left out of the submission
// otherwise. Without this script every question shows: the decision is the same either way.
(() => {
  const form = document.querySelector("form[data-relevance]");
  if (!form) return;
  const fields = [...form.querySelectorAll("[data-field]")];
  const answer = (wrap) => {
    const control = form.elements.namedItem(wrap.dataset.field);
    if (!control || control.value === "") return undefined;
    if (wrap.dataset.kind === "boolean") return { yes: true, no: false }[control.value];
    return control.value;
  };
  const compare = { "==": (a, b) => a === b, "!=": (a, b) => a !== b };
  // Kleene logic, as rules/ir.py evaluates: null is "not answered".
  const truth = (node, values) => {
    if (node.field !== undefined) {
      return node.field in values ? compare[node.op](values[node.field], node.value) : null;
    }
    const results = node.items.map((item) => truth(item, values));
    const count = (v) => results.filter((r) => r === v).length;
    if (node.op === "not") return results[0] === null ? null : !results[0];
    if (node.op === "all") return count(false) ? false : count(null) ? null : true;
    if (node.op === "any") return count(true) ? true : count(null) ? null : false;
    if (count(true) >= node.count) return true; // at_least
    return count(true) + count(null) < node.count ? false : null;
  };
  // Asked when, for some place the rules read it, every guard is settled the way that lets it matter.
  const asked = (occurrences, values) => occurrences.some((guards) => guards.every((g) => truth(g.node, values) === !g.kills));
  const update = () => {
    const values = {};
    for (const wrap of fields) {
      const rule = wrap.dataset.showWhen ? JSON.parse(wrap.dataset.showWhen) : null;
      const show = !rule || asked(rule, values);
      wrap.hidden = !show;
      wrap.querySelectorAll("input, select, textarea").forEach((control) => { control.disabled = !show; });
      const value = show ? answer(wrap) : undefined;
      if (value !== undefined) values[wrap.dataset.field] = value;
    }
    form.querySelectorAll("fieldset[data-section]").forEach((fieldset) => {
      fieldset.hidden = !fieldset.querySelector("[data-field]:not([hidden])");
    });
  };
  form.addEventListener("change", update);
  update();
  const firstError = form.querySelector("[aria-invalid=true]:not(:disabled)");
  if (firstError) firstError.focus();
})();

// The reviewer's impact replay: start it through the JSON API, show its progress, cancel it.
// Kept out of the HTML for the Content-Security-Policy; the session's CSRF token goes in a header.
(() => {
  const section = document.querySelector("[data-impact]");
  if (!section) return;
  const start = section.querySelector("[data-impact-start]");
  const cancel = section.querySelector("[data-impact-cancel]");
  const progress = section.querySelector("[data-impact-progress]");
  const bar = progress.querySelector(".progress-bar");
  const status = section.querySelector("[data-impact-status]");
  const headers = { "Content-Type": "application/json", "X-CSRFToken": section.dataset.csrf };
  const runUrl = (id) => section.dataset.runUrl.replace(/0$/, String(id));
  let running = null;

  async function call(method, url, body) {
    const response = await fetch(url, {
      method, headers, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined,
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = data.error || {};
      const details = (error.errors || []).map((e) => e.expected || "").filter(Boolean).join("; ");
      throw new Error((error.message || `HTTP ${response.status}`) + (details ? `: ${details}` : ""));
    }
    return data;
  }

  function show(run) {
    const percent = run.total ? Math.round((100 * run.processed) / run.total) : 100;
    progress.hidden = false;
    bar.style.width = `${percent}%`;
    bar.setAttribute("aria-valuenow", String(percent));
    bar.textContent = `${percent}%`;
    status.textContent = `Run #${run.id}: ${run.status}, ${run.processed} of ${run.total} screenings replayed,`
      + ` ${run.changed} changed.` + (run.error ? ` ${run.error}` : "");
  }

  function idle() {
    running = null;
    if (start) start.disabled = false;
    if (cancel) cancel.hidden = true;
  }

  async function follow(id) {
    running = id;
    if (start) start.disabled = true;
    if (cancel) cancel.hidden = false;
    while (running === id) {
      let run;
      try {
        run = await call("GET", runUrl(id));
      } catch (error) {
        status.textContent = `The run could not be followed: ${error.message}`;
        idle();
        return;
      }
      show(run);
      if (run.status === "done") {
        status.textContent += " Loading the changed screenings…";
        window.location.reload();
        return;
      }
      if (run.status !== "running") {
        idle();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 400));
    }
  }

  if (start) {
    start.addEventListener("click", async () => {
      start.disabled = true;
      status.textContent = "Starting…";
      try {
        const run = await call("POST", section.dataset.startUrl, {
          from: Number(section.dataset.from), to: Number(section.dataset.to),
        });
        show(run);
        follow(run.id);
      } catch (error) {
        status.textContent = `Not started: ${error.message}`;
        idle();
      }
    });
  }
  if (cancel) {
    cancel.addEventListener("click", async () => {
      const id = running;
      if (id === null) return;
      try {
        show(await call("DELETE", runUrl(id)));
      } catch (error) {
        status.textContent = `Not cancelled: ${error.message}`;
      }
      idle();
    });
  }
  bar.style.width = `${bar.getAttribute("aria-valuenow")}%`; // the latest run's, as the server rendered it
  if (section.dataset.running) follow(Number(section.dataset.running));
})();

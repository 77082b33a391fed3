// Behaviour for our pages, kept out of the HTML so the Content-Security-Policy can forbid inline scripts.
document.querySelectorAll("[data-print]").forEach((button) => button.addEventListener("click", () => window.print()));

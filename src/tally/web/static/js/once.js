// Console forms that create something (data-once) are sent once: a second click while the first
// submit is on its way does nothing. The server is what guarantees it (a one-time token bound to
// the session, consumed with the creation); this only spares the operator the "already sent"
// page, which for a new API key cannot show the key again.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-once")) return;
  if (form.dataset.sent) {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "true";
});
// Coming back to the page (the browser's back button) gives the form back: the server answers
// a second submit of it with what the first one did.
window.addEventListener("pageshow", () => {
  for (const form of document.querySelectorAll("form[data-once]")) delete form.dataset.sent;
});

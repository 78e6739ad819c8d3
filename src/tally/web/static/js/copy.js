// Buttons with data-copy put that text on the clipboard and say so for a moment (data-copied).
// Without the clipboard API (an old webview), the text is selected in a field to copy by hand.
document.addEventListener("click", async (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
  if (!button) return;
  const text = button.getAttribute("data-copy");
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const field = document.getElementById("share-link");
    if (field) field.select();
    return;
  }
  const label = button.textContent;
  button.textContent = button.getAttribute("data-copied");
  button.dataset.done = "true";
  setTimeout(() => {
    button.textContent = label;
    delete button.dataset.done;
  }, 2000);
});

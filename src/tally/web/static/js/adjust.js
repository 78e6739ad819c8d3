// The console's adjustment form: while the amount is typed, say what it will become (posted at
// once, a request for approval, a confirmation step, or refused). The server decides; this only
// tells the operator beforehand. The words come translated in the preview's data attributes.
document.addEventListener("DOMContentLoaded", () => {
  const input = document.querySelector("#adjust input[name=points]");
  const preview = document.getElementById("adjust-preview");
  if (!input || !preview) return;
  const limit = Number(input.dataset.limit);
  const ceiling = Number(input.dataset.ceiling);
  const confirmAbove = Number(input.dataset.confirm);
  const update = () => {
    const text = input.value.replace(/[\s,]/g, "").replace("\u2212", "-");
    if (!/^[+-]?\d{1,12}$/.test(text) || Number(text) === 0) {
      preview.hidden = true;
      return;
    }
    const size = Math.abs(Number(text));
    const parts = [];
    if (size > ceiling) {
      parts.push(preview.dataset.refuse);
    } else {
      parts.push(size > limit ? preview.dataset.request : preview.dataset.post);
      if (size > confirmAbove) parts.push(preview.dataset.confirm);
    }
    preview.textContent = parts.join(" ");
    preview.dataset.kind = size > ceiling ? "refuse" : size > limit ? "request" : "post";
    preview.hidden = false;
  };
  input.addEventListener("input", update);
  update();
});

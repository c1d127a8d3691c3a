// Copy buttons: the page works without this; it only saves a selection.
// The button says "Copied" for a moment, then gets its own label back (with the hidden
// words that make its accessible name), however often it is pressed.
const labels = new WeakMap();
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button || !navigator.clipboard) return;
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    if (!labels.has(button)) labels.set(button, [...button.childNodes].map((n) => n.cloneNode(true)));
    button.textContent = "Copied";
    clearTimeout(button.copiedTimer);
    button.copiedTimer = setTimeout(() => {
      button.replaceChildren(...labels.get(button).map((n) => n.cloneNode(true)));
    }, 1500);
  });
});

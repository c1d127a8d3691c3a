// Copy buttons: the page works without this; it only saves a selection.
// The button says "Copied" for a moment, then "Copy" again, however often it is pressed.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button || !navigator.clipboard) return;
  // Only the visible word changes: a visually hidden rest of the name stays.
  const label = button.firstChild;
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    label.nodeValue = "Copied";
    clearTimeout(button.copiedTimer);
    button.copiedTimer = setTimeout(() => { label.nodeValue = "Copy"; }, 1500);
  });
});

// Small enhancements; every page works without them.
// An error summary takes the focus when the page shows one, so a screen reader announces it
// and the keyboard starts from it (GOV.UK Design System pattern).
const summary = document.querySelector(".error-summary");
if (summary instanceof HTMLElement) {
  summary.focus();
}

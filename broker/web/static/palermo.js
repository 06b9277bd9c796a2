// Small enhancements; every page works without them.
// An error summary takes the focus when the page shows one, so a screen reader announces it
// and the keyboard starts from it (GOV.UK Design System pattern).
const summary = document.querySelector(".error-summary");
if (summary instanceof HTMLElement) {
  summary.focus();
}

// An evidence upload shows its progress; without this script the form posts as usual.
for (const form of document.querySelectorAll("form[data-upload]")) {
  if (!(form instanceof HTMLFormElement)) continue;
  form.addEventListener("submit", (event) => {
    const input = form.querySelector('input[type="file"]');
    const bar = form.querySelector("progress");
    if (!(input instanceof HTMLInputElement) || !input.files?.length || !bar) return;
    event.preventDefault();
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    bar.hidden = false;
    request.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
    });
    request.addEventListener("load", () => {
      // On an error, post the form again the plain way, to show the error page.
      if (request.status < 400) window.location.assign(request.responseURL);
      else form.submit();
    });
    request.addEventListener("error", () => form.submit());
    request.send(new FormData(form));
  });
}

// A "Copy" button after every element with data-copy (shortened digests on the audit page):
// the full value goes to the clipboard. Without JavaScript the full value is still in title.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    var copied = document.execCommand("copy");
    document.body.removeChild(area);
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function addButton(source) {
    if (source.dataset.copyReady) {
      return;
    }
    source.dataset.copyReady = "1";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy btn-small";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy " + source.dataset.copy);
    button.addEventListener("click", function () {
      copyText(source.dataset.copy).then(
        function () { button.textContent = "Copied"; },
        function () { button.textContent = "Select it"; }
      );
      window.setTimeout(function () { button.textContent = "Copy"; }, 1500);
    });
    source.insertAdjacentElement("afterend", button);
  }

  function addButtons(root) {
    root.querySelectorAll("[data-copy]").forEach(addButton);
  }

  document.addEventListener("DOMContentLoaded", function () { addButtons(document); });
  // Rows htmx swaps in later (the stage page's history) get their buttons too.
  document.addEventListener("htmx:afterSwap", function (event) { addButtons(event.target); });
})();

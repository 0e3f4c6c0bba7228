// The organiser's screen: copy buttons for the event links.
"use strict";

(function () {
  const status = document.querySelector(".copied");
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.dataset.copy);
      try {
        await navigator.clipboard.writeText(input.value);
      } catch (error) {
        // Clipboard API needs a secure context; the old way works on plain http too.
        input.select();
        document.execCommand("copy");
      }
      if (status) status.textContent = `Copied the ${input.labels[0].textContent.toLowerCase()} link.`;
    });
  }
  const created = document.getElementById("created");
  if (created) created.focus();
})();

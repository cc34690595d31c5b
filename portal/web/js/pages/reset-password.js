// The link an ADMIN made (generateResetLink): a new password twice. A used,
// replaced, expired or mangled link gets a page of its own.
import { request } from "../api.js";
import { announce, formatDateTime, onNewPassword } from "../forms.js";
import { startPage } from "../layout.js";

function show(id) {
  for (const section of ["checking", "unusable", "choose", "done"]) {
    document.getElementById(section).hidden = section !== id;
  }
  document.querySelector(`#${id} h1`)?.focus();
}

const page = await startPage({ title: "Choose a new password" });
if (page) {
  const token = new URLSearchParams(window.location.search).get("token") || "";
  let link = null;
  let answered = true;
  try {
    ({ resetLink: link } = token ? await request("ResetLink", { token }) : { resetLink: null });
  } catch (problem) {
    answered = false;
    document.getElementById("checking").hidden = true;
    announce(problem.message);
  }
  if (!answered) {
    // Said in the live region; reloading the page tries again.
  } else if (!link || !link.usable) {
    if (!link) {
      document.getElementById("unusable-reason").textContent =
        "This link is not complete or not one we made. Please open it again exactly as your practice gave it to you.";
    }
    show("unusable");
  } else {
    document.getElementById("reset-email").textContent = link.email;
    document.getElementById("username").value = link.email;
    document.getElementById("reset-expires").textContent = formatDateTime(link.expiresAt);
    const form = document.getElementById("new-password");
    onNewPassword(
      form,
      async (password, passwordConfirmation) =>
        (await request("ResetPassword", { token, password, passwordConfirmation })).resetPassword,
      {
        onInvalidToken: () => show("unusable"),
        onDone: (ok) => {
          document.getElementById("done-email").textContent = ok.email;
          show("done");
        },
      },
    );
    show("choose");
  }
}

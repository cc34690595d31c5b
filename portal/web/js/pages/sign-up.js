// The invitation link: what it is for, then a password twice and Create Account.
import { request } from "../api.js";
import { announce, formatDateTime, onNewPassword } from "../forms.js";
import { pageUrl, startPage } from "../layout.js";

const show = (id) => {
  for (const section of ["checking", "unusable", "create", "created"]) {
    document.getElementById(section).hidden = section !== id;
  }
};

const page = await startPage({ title: "Create your account" });
if (page) {
  const token = new URLSearchParams(window.location.search).get("token") || "";
  let invitation = null;
  let answered = true;
  try {
    ({ invitation } = token ? await request("Invitation", { token }) : { invitation: null });
  } catch (problem) {
    answered = false;
    document.getElementById("checking").hidden = true;
    announce(problem.message);
  }
  if (!answered) {
    // Said in the live region; reloading the page tries again.
  } else if (!invitation || !invitation.usable) {
    if (!invitation) {
      document.getElementById("unusable-reason").textContent =
        "This link is not complete or not one we sent. Please open it again from the email.";
    }
    show("unusable");
  } else {
    document.getElementById("invited-by").textContent = invitation.practiceName;
    document.getElementById("invited-email").textContent = invitation.email;
    document.getElementById("invitation-expires").textContent = formatDateTime(
      invitation.expiresAt,
    );
    document.getElementById("username").value = invitation.email;
    const form = document.getElementById("create-account");
    onNewPassword(
      form,
      async (password, passwordConfirmation) =>
        (await request("CreateAccount", { token, password, passwordConfirmation })).createAccount,
      {
        onInvalidToken: () => show("unusable"),
        onDone: (ok) => {
          document.getElementById("created-email").textContent = ok.email;
          if (ok.patientId === null) {
            // A staff invitation: staff sign in at their own page.
            document.getElementById("continue-sign-in").href = pageUrl("staff/sign-in");
          }
          show("created");
          document.querySelector("#created h1").focus();
        },
      },
    );
    show("create");
  }
}

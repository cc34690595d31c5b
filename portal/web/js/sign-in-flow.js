// Sign-in for patients and staff: email and password, then the second step
// when the account has two-step verification (MfaRequired).
import { outcome, request } from "./api.js";
import { announce, onSubmit, showFailure } from "./forms.js";
import { homeFor, practiceSlug, safeNext, startPage } from "./layout.js";

export async function signInPage({ title }) {
  const page = await startPage({ title });
  if (!page) return;
  if (page.me) {
    // Signed in already (a bookmark, the back button): straight on.
    window.location.replace(homeFor(page.me.role));
    return;
  }
  const credentials = document.getElementById("sign-in");
  const secondStep = document.getElementById("second-step");
  let challenge = null;

  const signedIn = (account) => {
    // Back to the staff page asked for, else the account's home.
    const next = account.role === "PATIENT" ? null : safeNext();
    window.location.assign(next || homeFor(account.role));
  };

  onSubmit(credentials, async ({ email, password }) => {
    const data = await request("SignIn", { practice: practiceSlug(), email, password });
    const result = outcome(data.login);
    if (result.failure) {
      showFailure(credentials, result.failure, { INVALID_CREDENTIALS: "password" });
      return;
    }
    if (data.login.__typename === "MfaRequired") {
      challenge = data.login.challenge;
      credentials.hidden = true;
      secondStep.hidden = false;
      document.getElementById("heading").textContent = "Two-step verification";
      document.getElementById("code").focus();
      return;
    }
    signedIn(data.login.account);
  });

  onSubmit(secondStep, async ({ code }) => {
    const data = await request("CompleteSignIn", { challenge, code: code.replace(/\s/g, "") });
    const result = outcome(data.completeMfaLogin);
    if (result.failure) {
      if (result.failure.code === "INVALID_TOKEN") {
        // The challenge expired or was spent: start again from the password.
        secondStep.hidden = true;
        credentials.hidden = false;
        document.getElementById("password").value = "";
        document.getElementById("password").focus();
        announce(result.failure.message);
        return;
      }
      showFailure(secondStep, result.failure, { INVALID_CODE: "code" });
      return;
    }
    signedIn(data.completeMfaLogin.account);
  });
}

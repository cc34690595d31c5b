// Where staff are sent while their practice requires two-step verification
// and they have none (MFA_REQUIRED): set it up, then on to the page asked for.
import { startTwoStepSetup } from "../two-step-setup.js";
import { request } from "../api.js";
import { announce } from "../forms.js";
import { homeFor, safeNext, startPage } from "../layout.js";

const page = await startPage({ title: "Two-step verification", audience: "staff" });
if (page) {
  const onward = () => window.location.assign(safeNext() || homeFor(page.me.role));
  try {
    const { me } = await request("MyAccount");
    if (me.mfaEnabled) {
      onward();
    } else {
      if (!me.practice.staffMfaRequired) {
        document.getElementById("why").textContent =
          "After your password, sign-in will also ask for a code from an app on your phone.";
      }
      await startTwoStepSetup(document.getElementById("two-step-setup"), {
        onEnabled: onward,
        doneLabel: "Continue",
        headingLevel: "h2",
      });
    }
  } catch (problem) {
    announce(problem.message);
  }
}

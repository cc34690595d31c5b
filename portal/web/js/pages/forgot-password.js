// Self-service recovery: the email address, then the 6-digit code it was
// sent, then a new password twice. The first step answers in the same words
// whether or not an account uses the address.
import { outcome, request } from "../api.js";
import { announce, onNewPassword, onSubmit, showFailure } from "../forms.js";
import { pageUrl, practiceSlug, startPage } from "../layout.js";

const SECTIONS = ["ask", "enter-code", "choose", "done"];

function show(id) {
  for (const section of SECTIONS) document.getElementById(section).hidden = section !== id;
  document.querySelector(`#${id} h1`).focus();
}

const page = await startPage({ title: "Reset your password" });
if (page) {
  // Staff come from staff sign-in (?for=staff) and go back there.
  if (new URLSearchParams(window.location.search).get("for") === "staff") {
    for (const link of document.querySelectorAll(".back-to-sign-in")) {
      link.href = pageUrl("staff/sign-in");
    }
  }
  const practice = practiceSlug();
  let email = "";
  let token = "";

  const requestForm = document.getElementById("request-code");
  onSubmit(requestForm, async (values) => {
    const address = values.email.trim();
    if (!address) {
      showFailure(requestForm, { code: "VALIDATION", message: "Enter your email address.", field: "email" });
      return;
    }
    const data = await request("RequestResetCode", { practice, email: address });
    const result = outcome(data.requestVerificationCode);
    if (result.failure) {
      showFailure(requestForm, result.failure);
      return;
    }
    email = address;
    document.getElementById("code-sent").textContent = result.ok.message;
    document.getElementById("code").value = "";
    show("enter-code");
  });

  document.getElementById("start-again").addEventListener("click", () => {
    document.getElementById("email").value = email;
    show("ask");
  });

  const codeForm = document.getElementById("verify-code");
  onSubmit(codeForm, async (values) => {
    const code = values.code.replace(/\s/g, "");
    if (!/^\d{6}$/.test(code)) {
      showFailure(codeForm, {
        code: "INVALID_CODE",
        message: "Enter the 6 digits of the code from the email.",
        field: "code",
      });
      return;
    }
    const data = await request("VerifyResetCode", { practice, email, code });
    const result = outcome(data.verifyResetCode);
    if (result.failure) {
      showFailure(codeForm, result.failure, { INVALID_CODE: "code" });
      return;
    }
    token = result.ok.token;
    document.getElementById("username").value = email;
    show("choose");
  });

  const passwordForm = document.getElementById("new-password");
  onNewPassword(
    passwordForm,
    async (password, passwordConfirmation) =>
      (await request("ResetPassword", { token, password, passwordConfirmation })).resetPassword,
    {
      onInvalidToken: () => {
        // The 15 minutes after the code ran out: start again with a new code.
        show("ask");
        announce("That took too long and the code has expired. Please ask for a new code.");
      },
      onDone: (ok) => {
        document.getElementById("done-email").textContent = ok.email;
        show("done");
      },
    },
  );
}

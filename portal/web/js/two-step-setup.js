// Turning on two-step verification, shared by the account page and the
// staff enrolment page: a new secret as a QR code (drawn by the service, an
// SVG data: image) and as text to type, a code from the app to confirm, then
// the recovery codes, shown this once, with a way to copy them.
import { outcome, request } from "./api.js";
import { announce, onSubmit, showFailure } from "./forms.js";

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

/** The secret in groups of four, easier to read and type. */
function grouped(secret) {
  return secret.match(/.{1,4}/g).join(" ");
}

/**
 * Renders the setup into `container` and starts it: asks the service for a
 * new secret, then waits for a code. `onEnabled()` runs when the person has
 * seen the recovery codes and pressed the button under them
 * (`doneLabel`). `onCancel`, when given, adds a Cancel button. Its headings
 * are `headingLevel` (below the page's own).
 */
export async function startTwoStepSetup(
  container,
  { onEnabled, onCancel, doneLabel = "Done", headingLevel = "h3" },
) {
  container.replaceChildren(element("p", { text: "Preparing…" }));
  const data = await request("BeginTwoStep");
  const enrollment = data.beginMfaEnrollment;

  const heading = element(headingLevel, { tabindex: "-1", text: "Set up your authenticator app" });
  const steps = element(
    "ol",
    { class: "steps" },
    element("li", {
      text: "Open an authenticator app on your phone (for example Google Authenticator, Microsoft Authenticator or 1Password).",
    }),
    element("li", { text: "Add an account in the app and scan this QR code." }),
    element("li", { text: "Enter the 6-digit code the app then shows." }),
  );
  const qr = element("img", {
    class: "qr-code",
    src: enrollment.qrCode,
    alt: "QR code for your authenticator app",
    width: "200",
    height: "200",
  });
  const secretText = element("code", { id: "two-step-secret", class: "secret" });
  secretText.textContent = grouped(enrollment.secret);
  const manual = element(
    "p",
    {},
    "Cannot scan it? Type this key into the app instead: ",
    secretText,
  );

  const codeInput = element("input", {
    id: "two-step-code",
    name: "code",
    type: "text",
    inputmode: "numeric",
    autocomplete: "one-time-code",
    maxlength: "12",
    required: "",
  });
  const submit = element("button", { type: "submit", text: "Turn on two-step verification" });
  const actions = element("div", { class: "actions" }, submit);
  if (onCancel) {
    const cancel = element("button", { type: "button", class: "secondary", text: "Cancel" });
    cancel.addEventListener("click", onCancel);
    actions.append(cancel);
  }
  const form = element(
    "form",
    { id: "two-step-confirm", method: "post", novalidate: "" },
    element(
      "div",
      { class: "field" },
      element("label", { for: "two-step-code", text: "Code from the app" }),
      codeInput,
    ),
    actions,
  );
  container.replaceChildren(heading, steps, qr, manual, form);
  heading.focus();

  onSubmit(form, async ({ code }) => {
    const digits = code.replace(/\s/g, "");
    if (!/^\d{6}$/.test(digits)) {
      showFailure(form, {
        code: "INVALID_CODE",
        message: "Enter the 6 digits your authenticator app shows.",
        field: "code",
      });
      return;
    }
    const answer = await request("ConfirmTwoStep", { code: digits });
    const result = outcome(answer.confirmMfaEnrollment);
    if (result.failure) {
      if (result.failure.code === "MFA_ALREADY_ENABLED") {
        announce(result.failure.message, "success");
        onEnabled();
        return;
      }
      showFailure(form, result.failure, { INVALID_CODE: "code" });
      return;
    }
    showRecoveryCodes(container, result.ok.recoveryCodes, { onEnabled, doneLabel, headingLevel });
  });
}

function showRecoveryCodes(container, codes, { onEnabled, doneLabel, headingLevel }) {
  const heading = element(headingLevel, { tabindex: "-1", text: "Two-step verification is on" });
  const explain = element("p", {
    text:
      "Save these recovery codes somewhere safe, such as a password manager. " +
      "Each one signs you in once if you lose your phone. They are shown only now.",
  });
  const list = element("ul", { class: "recovery-codes", id: "recovery-codes", "aria-label": "Recovery codes" });
  for (const code of codes) list.append(element("li", {}, element("code", { text: code })));
  const copy = element("button", { type: "button", class: "secondary", text: "Copy codes" });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(codes.join("\n"));
      announce("The recovery codes are copied.", "success");
    } catch {
      // No clipboard (an older browser, or permission refused): select them instead.
      window.getSelection().selectAllChildren(list);
      announce("Copying is not available here: the codes are selected, copy them yourself.");
    }
  });
  const done = element("button", { type: "button", text: doneLabel });
  done.addEventListener("click", onEnabled);
  container.replaceChildren(
    heading,
    explain,
    list,
    element("div", { class: "actions" }, copy, done),
  );
  heading.focus();
  announce("Two-step verification is on. Save your recovery codes.", "success");
}

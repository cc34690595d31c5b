// Form helpers: the page's announcements (its aria-live region), errors at
// a field, a busy submit button, and the password policy as the user types.
import { outcome } from "./api.js";

/**
 * Says `message` in a live region, as an error or a success: the page's
 * (#announcer) unless another is given (a dialog has its own, as the page
 * behind a modal dialog is inert).
 */
export function announce(message, kind = "error", region = document.getElementById("announcer")) {
  region.className = `notice ${kind}`;
  region.textContent = "";
  // A fresh text node, so the same message twice is announced twice.
  window.setTimeout(() => {
    region.textContent = message;
  }, 30);
}

export function clearAnnouncement(region = document.getElementById("announcer")) {
  region.textContent = "";
  region.className = "notice";
}

/** Marks `input` invalid with `message` under it (linked by aria-describedby). */
export function setFieldError(input, message) {
  const id = `${input.id}-error`;
  let note = document.getElementById(id);
  if (!note) {
    note = document.createElement("p");
    note.id = id;
    note.className = "field-error";
    input.insertAdjacentElement("afterend", note);
    const described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    input.setAttribute("aria-describedby", [...described, id].join(" "));
  }
  note.textContent = message;
  input.setAttribute("aria-invalid", "true");
}

export function clearFieldErrors(form) {
  for (const input of form.querySelectorAll("[aria-invalid='true']")) {
    input.removeAttribute("aria-invalid");
    const note = document.getElementById(`${input.id}-error`);
    if (note) note.textContent = "";
  }
}

/**
 * Runs `work` on submit with the button disabled meanwhile; errors thrown by
 * it (ApiError) are announced. `work` gets the form's values by name. A
 * shell's submit button may start `disabled` and is enabled here, so nothing
 * typed before the page's module has run is posted by the browser itself.
 */
export function onSubmit(form, work) {
  const submit = form.querySelector("button[type='submit']");
  if (submit) submit.disabled = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    const region = regionFor(form);
    clearAnnouncement(region);
    const button = form.querySelector("button[type='submit']");
    if (button) button.disabled = true;
    try {
      await work(Object.fromEntries(new FormData(form).entries()));
    } catch (problem) {
      announce(problem.message || "Something went wrong. Please try again.", "error", region);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

/** The live region a form's messages go to: its own if it has one, else the page's. */
export function regionFor(form) {
  return form.querySelector("[aria-live]") || document.getElementById("announcer");
}

/**
 * Shows a mutation's failure ({ code, message, field }) at its input (the
 * `field` it names, or `fieldsByCode[code]`) and in the form's live region.
 */
export function showFailure(form, failure, fieldsByCode = {}) {
  const name = failure.field || fieldsByCode[failure.code];
  const input = name && form.querySelector(`[name='${name}']`);
  if (input) {
    setFieldError(input, failure.message);
    input.focus();
  }
  announce(failure.message, "error", regionFor(form));
}

export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 128;

/**
 * Ticks the policy's checklist (#password-checklist) as the user types: the
 * length and the confirmation matching. Whether it is too easy to guess is
 * judged by the service on submit (WEAK_PASSWORD), with its reason shown.
 */
export function passwordFeedback(password, confirmation, checklist) {
  const items = {
    length: checklist.querySelector("[data-check='length']"),
    match: checklist.querySelector("[data-check='match']"),
  };
  const update = () => {
    const length = [...password.value].length;
    items.length.classList.toggle("met", length >= PASSWORD_MIN && length <= PASSWORD_MAX);
    items.match.classList.toggle("met", password.value !== "" && password.value === confirmation.value);
  };
  password.addEventListener("input", update);
  confirmation.addEventListener("input", update);
  update();
}

/**
 * A form choosing a password twice (#password, #password-confirmation, with
 * #password-checklist ticked as they type). On submit `send(password,
 * passwordConfirmation)` runs the mutation and returns its result: a weak or
 * mismatched password is shown at its field, a link or code no longer good
 * goes to `onInvalidToken()`, and success clears the form for `onDone(ok)`.
 */
export function onNewPassword(form, send, { onInvalidToken, onDone }) {
  passwordFeedback(
    document.getElementById("password"),
    document.getElementById("password-confirmation"),
    document.getElementById("password-checklist"),
  );
  onSubmit(form, async ({ password, passwordConfirmation }) => {
    const result = outcome(await send(password, passwordConfirmation));
    if (result.failure) {
      if (result.failure.code === "INVALID_TOKEN") {
        onInvalidToken();
        return;
      }
      showFailure(form, result.failure, {
        WEAK_PASSWORD: "password",
        PASSWORD_MISMATCH: "passwordConfirmation",
      });
      return;
    }
    form.reset();
    onDone(result.ok);
  });
}

/** A date and time in the reader's own words ("27 November 2026, 14:05"). */
export function formatDateTime(iso) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(undefined, { dateStyle: "long", timeStyle: "short" }).format(
    new Date(iso),
  );
}

/** A calendar date (a `Date` scalar, YYYY-MM-DD) without shifting it by time zone. */
export function formatDate(isoDate) {
  if (!isoDate) return "—";
  const [year, month, day] = isoDate.split("-").map(Number);
  return new Intl.DateTimeFormat(undefined, { dateStyle: "long", timeZone: "UTC" }).format(
    new Date(Date.UTC(year, month - 1, day)),
  );
}

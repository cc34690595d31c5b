// The account page, for patients (/{practice}/account) and staff
// (/{practice}/staff/account) alike: a patient's own details (read-only),
// the password, two-step verification and where the account is signed in.
import { outcome, request } from "../api.js";
import {
  announce,
  formatDate,
  formatDateTime,
  onSubmit,
  passwordFeedback,
  showFailure,
} from "../forms.js";
import { pageUrl, startPage } from "../layout.js";
import { startTwoStepSetup } from "../two-step-setup.js";

const forStaff = window.location.pathname.split("/")[2] === "staff";
const page = await startPage({ title: "Your account", audience: forStaff ? "staff" : "patient" });
if (page) {
  document.getElementById("account-email").textContent = page.me.email;
  if (forStaff) {
    document.getElementById("staff-back-link").href = pageUrl("staff/patients");
    document.getElementById("staff-back").hidden = false;
  }
  try {
    const { me } = await request("MyAccount");
    showProfile(me.patient);
    startPasswordForm(me);
    showTwoStep(me);
    await showSessions();
  } catch (problem) {
    announce(problem.message);
  }
}

function showProfile(patient) {
  if (!patient) return;
  document.getElementById("profile-name").textContent = `${patient.firstName} ${patient.lastName}`;
  document.getElementById("profile-date-of-birth").textContent = formatDate(patient.dateOfBirth);
  document.getElementById("profile-email").textContent = patient.email || "—";
  document.getElementById("profile-phone").textContent = patient.phone || "—";
  document.getElementById("profile").hidden = false;
}

function startPasswordForm(me) {
  const form = document.getElementById("change-password");
  document.getElementById("password-username").value = me.email;
  passwordFeedback(
    document.getElementById("password"),
    document.getElementById("password-confirmation"),
    document.getElementById("password-checklist"),
  );
  onSubmit(form, async ({ currentPassword, password, passwordConfirmation }) => {
    const data = await request("ChangePassword", { currentPassword, password, passwordConfirmation });
    const result = outcome(data.changePassword);
    if (result.failure) {
      showFailure(form, result.failure, {
        INVALID_CREDENTIALS: "currentPassword",
        WEAK_PASSWORD: "password",
        PASSWORD_MISMATCH: "passwordConfirmation",
      });
      return;
    }
    form.reset();
    document.getElementById("password").dispatchEvent(new Event("input"));
    announce("Your password is changed. Your other devices were signed out.", "success");
    await showSessions();
  });
}

function showTwoStep(me) {
  const off = document.getElementById("two-step-off");
  const on = document.getElementById("two-step-on");
  const setup = document.getElementById("two-step-setup");
  const staffMustKeep = forStaff && me.practice.staffMfaRequired;
  const render = (enabled) => {
    off.hidden = enabled;
    on.hidden = !enabled;
    setup.hidden = true;
    setup.replaceChildren();
    document.getElementById("two-step-required").hidden = !staffMustKeep;
    for (const part of document.querySelectorAll("#two-step-disable .field, #two-step-disable .actions")) {
      part.hidden = staffMustKeep;
    }
  };
  render(me.mfaEnabled);

  document.getElementById("two-step-start").addEventListener("click", async () => {
    off.hidden = true;
    setup.hidden = false;
    try {
      await startTwoStepSetup(setup, {
        onEnabled: async () => {
          render(true);
          document.getElementById("two-step-heading").focus();
          // Turning it on signed out every other device.
          await showSessions();
        },
        onCancel: () => {
          render(false);
          document.getElementById("two-step-start").focus();
        },
      });
    } catch (problem) {
      render(false);
      announce(problem.message);
    }
  });

  const disable = document.getElementById("two-step-disable");
  onSubmit(disable, async ({ password }) => {
    const data = await request("TurnOffTwoStep", { password });
    const result = outcome(data.disableMfa);
    if (result.failure) {
      showFailure(disable, result.failure, { INVALID_CREDENTIALS: "password" });
      return;
    }
    disable.reset();
    render(false);
    announce("Two-step verification is off.", "success");
  });
}

async function showSessions() {
  const { mySessions } = await request("MySessions");
  const list = document.getElementById("sessions");
  list.replaceChildren();
  for (const session of mySessions) {
    const item = document.createElement("li");
    const device = document.createElement("p");
    device.className = "device";
    device.textContent = session.device || "Unknown browser";
    if (session.current) {
      const badge = document.createElement("span");
      badge.className = "status";
      badge.textContent = "This device";
      device.append(" ", badge);
    }
    const when = document.createElement("p");
    when.className = "muted";
    when.textContent = `Signed in ${formatDateTime(session.createdAt)} · last active ${formatDateTime(session.lastSeenAt)}`;
    item.append(device, when);
    if (!session.current) {
      const end = document.createElement("button");
      end.type = "button";
      end.className = "secondary";
      end.textContent = "Sign out";
      end.setAttribute(
        "aria-label",
        `Sign out ${session.device || "unknown browser"}, signed in ${formatDateTime(session.createdAt)}`,
      );
      end.addEventListener("click", async () => {
        end.disabled = true;
        try {
          await request("EndSession", { id: session.id });
          announce("That device is signed out.", "success");
          await showSessions();
        } catch (problem) {
          end.disabled = false;
          announce(problem.message);
        }
      });
      item.append(end);
    }
    list.append(item);
  }
  const others = mySessions.filter((session) => !session.current).length;
  const endOthers = document.getElementById("end-others");
  endOthers.hidden = others === 0;
}

document.getElementById("end-others").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  button.disabled = true;
  try {
    const { endOtherSessions } = await request("EndOtherSessions");
    announce(
      endOtherSessions === 1 ? "1 other device is signed out." : `${endOtherSessions} other devices are signed out.`,
      "success",
    );
    await showSessions();
  } catch (problem) {
    announce(problem.message);
  } finally {
    button.disabled = false;
  }
});

// One patient: the profile, and for ADMINs the Patient Portal tab (status,
// dates, Send Invitation, a reset link, revoke and restore) and a link to the
// patient's audit trail. Clinicians see no portal management.
import { outcome, request } from "../api.js";
import {
  announce,
  clearAnnouncement,
  formatDate,
  formatDateTime,
  onSubmit,
  regionFor,
  setFieldError,
  showFailure,
} from "../forms.js";
import { pageUrl, startPage } from "../layout.js";

// A reset link's default lifetime, within the service's limit (resetLinkMaxDays).
const RESET_LINK_DEFAULT_DAYS = 7;
const DAY_MS = 24 * 60 * 60 * 1000;

const STATUS_WORDS = {
  YET_TO_SIGN_UP: "Yet to sign up",
  INITIATED: "Initiated",
  SIGNED_UP: "Already signed up",
  REVOKED: "Revoked",
};

// What the portal tab shows: { email, portal }, kept for redrawing.
let shown = null;

const text = (id, value) => {
  document.getElementById(id).textContent = value;
};

const page = await startPage({ title: "Patient", audience: "staff" });
if (page) {
  const id = decodeURIComponent(window.location.pathname.split("/").pop());
  const { patient } = await request("Patient", { id }).catch((problem) => {
    announce(problem.message);
    return { patient: undefined };
  });
  if (patient === null) {
    text("patient-name", "No such patient");
    document.getElementById("tabs").hidden = true;
    document.getElementById("panel-profile").hidden = true;
  } else if (patient) {
    text("patient-name", `${patient.firstName} ${patient.lastName}`);
    text("profile-date-of-birth", formatDate(patient.dateOfBirth));
    text("profile-email", patient.email || "—");
    text("profile-phone", patient.phone || "—");
    setUpTabs();
    if (page.me.role === "ADMIN") {
      document.getElementById("tab-portal").hidden = false;
      const auditLink = document.getElementById("audit-link");
      document.getElementById("audit-link-anchor").href =
        `${pageUrl("staff/audit")}?patient=${encodeURIComponent(id)}`;
      auditLink.hidden = false;
      await showPortal(id);
    }
  }
}

function setUpTabs() {
  const tabs = [...document.querySelectorAll("[role='tab']")];
  const select = (tab) => {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
    }
    tab.focus();
  };
  for (const tab of tabs) {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const visible = tabs.filter((t) => !t.hidden);
      const at = visible.indexOf(tab);
      const moves = { ArrowRight: 1, ArrowLeft: -1 };
      if (event.key in moves) {
        event.preventDefault();
        select(visible[(at + moves[event.key] + visible.length) % visible.length]);
      } else if (event.key === "Home" || event.key === "End") {
        event.preventDefault();
        select(event.key === "Home" ? visible[0] : visible[visible.length - 1]);
      }
    });
  }
}

async function showPortal(id) {
  const button = document.getElementById("send-invitation");
  let data;
  try {
    data = await request("PatientPortal", { id });
  } catch (problem) {
    announce(problem.message);
    return;
  }
  render(data.patient);
  setUpResetLink(id, data.resetLinkMaxDays);
  setUpAccessChanges(id);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const sent = await request("SendInvitation", { patientId: id });
      const result = outcome(sent.sendInvitation);
      if (result.failure) {
        announce(result.failure.message);
      } else {
        render({ email: result.ok.sentTo, portal: result.ok.patient.portal });
        announce(`Invitation sent to ${result.ok.sentTo}.`, "success");
      }
    } catch (problem) {
      announce(problem.message);
    } finally {
      button.disabled = false;
      render(null);
    }
  });
}

function render(patient) {
  shown = patient || shown;
  const { email, portal } = shown;
  text("portal-status", STATUS_WORDS[portal.status] || portal.status);
  text("portal-invited", formatDateTime(portal.invitedAt));
  text("portal-expires", formatDateTime(portal.invitationExpiresAt));
  text("portal-signed-up", formatDateTime(portal.signedUpAt));
  text("portal-revoked", formatDateTime(portal.revokedAt));
  const button = document.getElementById("send-invitation");
  const canInvite = Boolean(email) && (portal.status === "YET_TO_SIGN_UP" || portal.status === "INITIATED");
  button.hidden = !canInvite;
  if (!email) {
    text("send-to", "Add an email address to the profile to invite this patient.");
  } else if (portal.status === "SIGNED_UP") {
    text("send-to", `Signed up with ${email}.`);
  } else if (portal.status === "REVOKED") {
    text("send-to", "Portal access is revoked.");
  } else {
    text("send-to", `to ${email}${portal.status === "INITIATED" ? " (replaces the earlier link)" : ""}`);
  }
  // A reset link is for a patient with an account that may sign in.
  document.getElementById("reset-link").hidden = portal.status !== "SIGNED_UP";
  document.getElementById("revoke-access").hidden = !["INITIATED", "SIGNED_UP"].includes(portal.status);
  document.getElementById("restore-access").hidden = portal.status !== "REVOKED";
}

/** A moment as a datetime-local input's value (local time, to the minute). */
function localInputValue(moment) {
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}` +
    `T${pad(moment.getHours())}:${pad(moment.getMinutes())}`
  );
}

function setUpResetLink(id, maxDays) {
  const form = document.getElementById("reset-link-form");
  const expires = document.getElementById("link-expires");
  const made = document.getElementById("link-made");
  const url = document.getElementById("link-url");
  const copyStatus = document.getElementById("copy-status");
  const limits = () => {
    const now = new Date();
    expires.min = localInputValue(now);
    expires.max = localInputValue(new Date(now.getTime() + maxDays * DAY_MS));
  };
  limits();
  const defaultDays = Math.min(RESET_LINK_DEFAULT_DAYS, maxDays);
  expires.value = localInputValue(new Date(Date.now() + defaultDays * DAY_MS));
  text("link-expires-hint", `Up to ${maxDays} days from now, in your time zone.`);

  onSubmit(form, async ({ expiresAt }) => {
    limits();
    const chosen = expiresAt ? new Date(expiresAt) : null;
    const now = Date.now();
    let problem = null;
    if (!chosen || Number.isNaN(chosen.getTime())) {
      problem = "Choose the date and time the link expires.";
    } else if (chosen.getTime() <= now) {
      problem = "Choose a time in the future.";
    } else if (chosen.getTime() > now + maxDays * DAY_MS) {
      problem = `Choose a time at most ${maxDays} days from now.`;
    }
    if (problem) {
      setFieldError(expires, problem);
      expires.focus();
      announce(problem, "error", regionFor(form));
      return;
    }
    const data = await request("GenerateResetLink", {
      patientId: id,
      expiresAt: chosen.toISOString(),
    });
    const result = outcome(data.generateResetLink);
    if (result.failure) {
      showFailure(form, result.failure, { INVALID_EXPIRY: "expiresAt" });
      return;
    }
    url.value = result.ok.url;
    text("link-made-expires", formatDateTime(result.ok.expiresAt));
    copyStatus.textContent = "";
    made.hidden = false;
    announce("Reset link made. Copy it now: it is shown only once.", "success", regionFor(form));
    url.focus();
    url.select();
  });

  document.getElementById("copy-link").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(url.value);
      copyStatus.textContent = "Link copied.";
    } catch {
      // No clipboard (an older browser, or permission refused): select it to copy by hand.
      url.focus();
      url.select();
      copyStatus.textContent = "The link is selected: press Ctrl+C (or ⌘+C) to copy it.";
    }
  });
}

const ACCESS_CHANGES = {
  revoke: {
    title: "Revoke portal access?",
    text:
      "The patient is signed out everywhere and cannot sign in, use a reset link or accept an invitation until access is restored. No email is sent.",
    confirm: "Revoke access",
    operation: "RevokePortalAccess",
    field: "revokePortalAccess",
    done: "Portal access revoked.",
  },
  restore: {
    title: "Restore portal access?",
    text: "The patient can sign in again with their password. No email is sent.",
    confirm: "Restore access",
    operation: "RestorePortalAccess",
    field: "restorePortalAccess",
    done: "Portal access restored.",
  },
};

function setUpAccessChanges(id) {
  const dialog = document.getElementById("confirm-access");
  const form = document.getElementById("confirm-access-form");
  const yes = document.getElementById("confirm-access-yes");
  const region = regionFor(form);
  let change = null;
  let opener = null;

  const ask = (kind, button) => {
    change = ACCESS_CHANGES[kind];
    opener = button;
    text("confirm-access-title", change.title);
    text("confirm-access-text", change.text);
    yes.textContent = change.confirm;
    yes.className = kind === "revoke" ? "danger" : "";
    clearAnnouncement(region);
    dialog.showModal();
  };
  document.getElementById("revoke-access").addEventListener("click", (event) =>
    ask("revoke", event.currentTarget),
  );
  document.getElementById("restore-access").addEventListener("click", (event) =>
    ask("restore", event.currentTarget),
  );
  dialog.addEventListener("close", () => {
    // Back to where the ADMIN was, or to the button that replaced it.
    const other = ["revoke-access", "restore-access"]
      .map((name) => document.getElementById(name))
      .find((button) => !button.hidden);
    const target = opener && !opener.hidden ? opener : other;
    (target || document.getElementById("tab-portal")).focus();
  });

  form.addEventListener("submit", async (event) => {
    if (event.submitter?.value !== "yes") return; // Cancel: the dialog closes.
    event.preventDefault();
    yes.disabled = true;
    clearAnnouncement(region);
    try {
      const data = await request(change.operation, { patientId: id });
      const result = outcome(data[change.field]);
      if (result.failure) {
        announce(result.failure.message, "error", region);
        return;
      }
      render({ email: result.ok.patient.email, portal: result.ok.patient.portal });
      document.getElementById("link-made").hidden = true;
      dialog.close();
      announce(change.done, "success");
    } catch (problem) {
      announce(problem.message, "error", region);
    } finally {
      yes.disabled = false;
    }
  });
}

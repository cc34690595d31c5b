// One patient: the profile, and for ADMINs the Patient Portal tab (status,
// dates, Send Invitation). Clinicians see no portal management.
import { outcome, request } from "../api.js";
import { announce, formatDate, formatDateTime } from "../forms.js";
import { startPage } from "../layout.js";

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
}

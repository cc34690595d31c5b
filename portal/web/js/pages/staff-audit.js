// The practice's audit trail (ADMIN only): pages of events, newest first,
// in plain words, for the whole practice or one patient (?patient=ID, from
// the patient's page or picked here by searching the patients list).
import { request } from "../api.js";
import { announce, onSubmit } from "../forms.js";
import { allowRoles, pageUrl, startPage } from "../layout.js";

const PAGE_SIZE = 50;
const MATCHES_SHOWN = 8;
const ACTION_WORDS = {
  LOGIN_SUCCEEDED: "Signed in",
  LOGIN_FAILED: "Sign-in failed",
  LOGIN_THROTTLED: "Sign-in refused: too many attempts",
  LOGOUT: "Signed out",
  PATIENT_CREATED: "Patient created",
  PATIENT_UPDATED: "Patient profile changed",
  INVITATION_SENT: "Portal invitation sent",
  INVITATION_CANCELLED: "Portal invitation cancelled",
  ACCOUNT_CREATED: "Account created",
  CODE_REQUESTED: "Password reset code requested",
  CODE_VERIFIED: "Password reset code accepted",
  CODE_FAILED: "Wrong password reset code",
  PASSWORD_RESET_BY_CODE: "Password reset with a code",
  PASSWORD_RESET_BY_LINK: "Password reset with a link",
  RESET_LINK_GENERATED: "Password reset link made",
  PASSWORD_CHANGED: "Password changed",
  PERMISSION_DENIED: "Refused: not allowed for the role",
  LOGIN_DISABLED: "Sign-in refused: account disabled",
  PORTAL_ACCESS_REVOKED: "Portal access revoked",
  PORTAL_ACCESS_RESTORED: "Portal access restored",
  SESSION_ENDED: "Signed out a device",
  OTHER_SESSIONS_ENDED: "Signed out every other device",
  STAFF_INVITED: "Staff invited",
  ACCOUNT_DISABLED: "Account disabled",
  ACCOUNT_ENABLED: "Account enabled",
  MFA_ENABLED: "Two-step verification turned on",
  MFA_FAILED: "Wrong two-step code",
  MFA_RECOVERY_CODE_USED: "Recovery code used",
  MFA_DISABLED: "Two-step verification turned off",
  MFA_RESET: "Two-step verification reset by an administrator",
  MFA_POLICY_CHANGED: "Two-step requirement for staff changed",
};
// To the second: events of one minute are told apart.
const TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const ROLE_WORDS = { ADMIN: "administrator", CLINICIAN: "clinician", PATIENT: "patient" };

const page = await startPage({ title: "Audit trail", audience: "staff" });
if (page && allowRoles(page.me, ["ADMIN"])) {
  const rows = document.getElementById("rows");
  const summary = document.getElementById("summary");
  const previous = document.getElementById("previous");
  const next = document.getElementById("next");
  const matches = document.getElementById("patient-matches");
  const patientId = new URLSearchParams(window.location.search).get("patient");
  let state = { after: null, earlier: [], endCursor: null };

  const load = async () => {
    let data;
    try {
      data = await request("AuditEvents", {
        patientId,
        first: PAGE_SIZE,
        after: state.after,
      });
    } catch (problem) {
      announce(problem.message);
      return;
    }
    const { edges, pageInfo } = data.auditEvents;
    rows.replaceChildren(...edges.map(({ node }) => row(node)));
    const from = state.earlier.length * PAGE_SIZE + 1;
    const to = state.earlier.length * PAGE_SIZE + edges.length;
    summary.textContent = edges.length
      ? `Events ${from}–${to}${pageInfo.hasNextPage ? ", older ones on the next page" : ""}`
      : "No events.";
    state.endCursor = pageInfo.endCursor;
    previous.disabled = state.earlier.length === 0;
    next.disabled = !pageInfo.hasNextPage;
  };

  // `label`: the column's name, shown before the value when a phone stacks the row.
  const cell = (content, label = "") => {
    const td = document.createElement("td");
    if (label) td.dataset.label = label;
    if (typeof content === "string") td.textContent = content;
    else td.append(content);
    return td;
  };

  const who = (event) => {
    if (!event.actorEmail) return "—";
    const role = ROLE_WORDS[event.actorRole];
    return role ? `${event.actorEmail} (${role})` : event.actorEmail;
  };

  const patientCell = (event) => {
    if (!event.patientId) return "—";
    const link = document.createElement("a");
    link.href = `${pageUrl("staff/audit")}?patient=${encodeURIComponent(event.patientId)}`;
    link.textContent = event.patientName || "A removed patient";
    link.setAttribute("aria-label", `Events about ${link.textContent}`);
    return link;
  };

  const row = (event) => {
    const tr = document.createElement("tr");
    tr.append(
      cell(TIME.format(new Date(event.occurredAt))),
      cell(ACTION_WORDS[event.action] || event.action),
      cell(who(event), "Who"),
      cell(patientCell(event), "Patient"),
    );
    return tr;
  };

  // A patient that is not one of the practice's (a mistyped or foreign
  // address): said plainly, and no events are asked for.
  let known = true;
  if (patientId) {
    document.getElementById("show-all").href = pageUrl("staff/audit");
    let patient = null;
    try {
      ({ patient } = await request("Patient", { id: patientId }));
    } catch {
      patient = null;
    }
    known = patient !== null;
    document.getElementById("filter-text").textContent = known
      ? `Showing events about ${patient.firstName} ${patient.lastName}.`
      : "There is no such patient in this practice.";
    document.getElementById("filter").hidden = false;
  }

  onSubmit(document.getElementById("patient-search"), async ({ search }) => {
    const text = search.trim();
    if (!text) {
      matches.hidden = true;
      announce("Type part of a patient's name, email address or phone number.");
      return;
    }
    const data = await request("Patients", { search: text, first: MATCHES_SHOWN, after: null });
    const { edges, totalCount } = data.patients;
    matches.replaceChildren(
      ...edges.map(({ node }) => {
        const item = document.createElement("li");
        const link = document.createElement("a");
        link.href = `${pageUrl("staff/audit")}?patient=${encodeURIComponent(node.id)}`;
        link.textContent = `${node.lastName}, ${node.firstName}`;
        const email = document.createElement("span");
        email.className = "muted";
        email.textContent = node.email ? ` ${node.email}` : "";
        item.append(link, email);
        return item;
      }),
    );
    matches.hidden = edges.length === 0;
    announce(
      totalCount === 0
        ? "No patient matches that search."
        : `${totalCount} patient${totalCount === 1 ? " matches" : "s match"}${totalCount > MATCHES_SHOWN ? `; the first ${MATCHES_SHOWN} are listed` : ""}: choose one to see their events.`,
      totalCount === 0 ? "error" : "success",
    );
  });

  next.addEventListener("click", async () => {
    state.earlier.push(state.after);
    state.after = state.endCursor;
    await load();
    summary.focus();
  });
  previous.addEventListener("click", async () => {
    state.after = state.earlier.pop() ?? null;
    await load();
    summary.focus();
  });
  if (known) await load();
  else summary.textContent = "No events.";
}

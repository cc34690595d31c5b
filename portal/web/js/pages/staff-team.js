// The practice's staff (ADMIN only): who they are, their role, status and
// two-step verification; invite, disable and enable, reset a lost second
// step (each confirmed in a dialog); and the practice's two-step policy.
import { outcome, request } from "../api.js";
import {
  announce,
  clearAnnouncement,
  formatDateTime,
  onSubmit,
  regionFor,
  showFailure,
} from "../forms.js";
import { allowRoles, startPage } from "../layout.js";

const PAGE_SIZE = 25;
const ROLE_WORDS = { ADMIN: "Administrator", CLINICIAN: "Clinician" };

const page = await startPage({ title: "Staff", audience: "staff" });
if (page && allowRoles(page.me, ["ADMIN"])) {
  const rows = document.getElementById("rows");
  const summary = document.getElementById("summary");
  const previous = document.getElementById("previous");
  const next = document.getElementById("next");
  const requireMfa = document.getElementById("require-mfa");
  let state = { after: null, earlier: [], endCursor: null };

  const load = async () => {
    let data;
    try {
      data = await request("StaffMembers", { first: PAGE_SIZE, after: state.after });
    } catch (problem) {
      announce(problem.message);
      return;
    }
    const { edges, pageInfo, totalCount } = data.staff;
    rows.replaceChildren(...edges.map(({ node }) => row(node)));
    summary.textContent = `${totalCount} account${totalCount === 1 ? "" : "s"}`;
    state.endCursor = pageInfo.endCursor;
    previous.disabled = state.earlier.length === 0;
    next.disabled = !pageInfo.hasNextPage;
    requireMfa.checked = data.me.practice.staffMfaRequired;
    // Off until the practice's setting is known: a click before would be undone.
    requireMfa.disabled = false;
    showPending(data.pendingStaffInvitations);
  };

  const showPending = (invitations) => {
    document.getElementById("pending").hidden = invitations.length === 0;
    document.getElementById("pending-list").replaceChildren(
      ...invitations.map((invitation) => {
        const item = document.createElement("li");
        const email = document.createElement("strong");
        email.textContent = invitation.email;
        const details = document.createElement("span");
        details.className = "muted";
        details.textContent = ` ${ROLE_WORDS[invitation.role]}, link valid until ${formatDateTime(invitation.expiresAt)}`;
        item.append(email, details);
        return item;
      }),
    );
  };

  // `label`: the column's name, shown before the value when a phone stacks the row.
  const cell = (content, label = "") => {
    const td = document.createElement("td");
    if (label) td.dataset.label = label;
    if (typeof content === "string") td.textContent = content;
    else td.append(content);
    return td;
  };

  // Short words to see; the whole name (with whose account) to hear.
  const actionButton = (label, account, onClick, className = "secondary") => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = `${className} small`;
    button.textContent = label;
    button.setAttribute("aria-label", `${label} ${account.email}`);
    button.addEventListener("click", onClick);
    return button;
  };

  const row = (account) => {
    const tr = document.createElement("tr");
    const status = document.createElement("span");
    status.className = `status ${account.active ? "" : "off"}`;
    status.textContent = account.active ? "Active" : "Disabled";
    const actions = document.createElement("div");
    actions.className = "row-actions";
    if (account.id === page.me.id) {
      const you = document.createElement("span");
      you.className = "muted";
      you.textContent = "You";
      actions.append(you);
    } else {
      if (account.active) {
        actions.append(
          actionButton("Disable", account, () => confirmChange("disable", account), "danger"),
        );
      } else {
        actions.append(actionButton("Enable", account, () => confirmChange("enable", account)));
      }
      if (account.mfaEnabled) {
        actions.append(
          actionButton("Reset two-step", account, () => confirmChange("resetMfa", account)),
        );
      }
    }
    tr.append(
      cell(account.email),
      cell(ROLE_WORDS[account.role] || account.role, "Role"),
      cell(status),
      cell(account.mfaEnabled ? "On" : "Off", "Two-step"),
      cell(account.lastSignInAt ? formatDateTime(account.lastSignInAt) : "Never", "Last signed in"),
      cell(actions),
    );
    return tr;
  };

  // Each change: what the dialog says, then the mutation and what it answers.
  const CHANGES = {
    disable: {
      title: "Disable this account?",
      text: (a) =>
        `${a.email} is signed out everywhere and cannot sign in until the account is enabled again.`,
      confirm: "Disable",
      run: async (a) => (await request("DisableAccount", { accountId: a.id })).disableAccount,
      done: (a) => `${a.email} is disabled.`,
      danger: true,
    },
    enable: {
      title: "Enable this account?",
      text: (a) => `${a.email} can sign in again with their password.`,
      confirm: "Enable",
      run: async (a) => (await request("EnableAccount", { accountId: a.id })).enableAccount,
      done: (a) => `${a.email} is enabled.`,
      danger: false,
    },
    resetMfa: {
      title: "Reset two-step verification?",
      text: (a) =>
        `For a member of staff who lost their device: ${a.email}'s authenticator app and recovery codes stop working and they are signed out. They sign in with their password and set up two-step verification again.`,
      confirm: "Reset two-step",
      run: async (a) => (await request("ResetStaffMfa", { accountId: a.id })).resetStaffMfa,
      done: (a) => `Two-step verification of ${a.email} is reset.`,
      danger: true,
    },
  };
  const dialog = document.getElementById("confirm");
  const confirmForm = document.getElementById("confirm-form");
  const yes = document.getElementById("confirm-yes");
  const dialogRegion = regionFor(confirmForm);
  let pending = null;

  const confirmChange = (kind, account) => {
    pending = { change: CHANGES[kind], account };
    document.getElementById("confirm-title").textContent = pending.change.title;
    document.getElementById("confirm-text").textContent = pending.change.text(account);
    yes.textContent = pending.change.confirm;
    yes.className = pending.change.danger ? "danger" : "";
    clearAnnouncement(dialogRegion);
    dialog.showModal();
  };
  dialog.addEventListener("close", () => summary.focus());
  confirmForm.addEventListener("submit", async (event) => {
    if (event.submitter?.value !== "yes") return; // Cancel: the dialog closes.
    event.preventDefault();
    yes.disabled = true;
    clearAnnouncement(dialogRegion);
    try {
      const result = outcome(await pending.change.run(pending.account));
      if (result.failure) {
        announce(result.failure.message, "error", dialogRegion);
        return;
      }
      dialog.close();
      announce(pending.change.done(pending.account), "success");
      await load();
    } catch (problem) {
      announce(problem.message, "error", dialogRegion);
    } finally {
      yes.disabled = false;
    }
  });
  summary.tabIndex = -1;

  const invite = document.getElementById("invite-form");
  onSubmit(invite, async ({ email, role }) => {
    const data = await request("InviteStaff", { email: email.trim(), role });
    const result = outcome(data.inviteStaff);
    if (result.failure) {
      showFailure(invite, result.failure, { EMAIL_TAKEN: "email", VALIDATION: "email" });
      return;
    }
    invite.reset();
    await load();
    announce(
      `Invitation sent to ${result.ok.email} as ${ROLE_WORDS[result.ok.role].toLowerCase()}. The link works until ${formatDateTime(result.ok.expiresAt)}.`,
      "success",
      regionFor(invite),
    );
  });

  requireMfa.addEventListener("change", async () => {
    const wanted = requireMfa.checked;
    requireMfa.disabled = true;
    try {
      const data = await request("SetStaffMfaRequired", { required: wanted });
      const result = outcome(data.setStaffMfaRequired);
      if (result.failure) {
        requireMfa.checked = !wanted;
        announce(result.failure.message);
        return;
      }
      requireMfa.checked = result.ok.practice.staffMfaRequired;
      announce(
        wanted
          ? "Two-step verification is now required for all staff."
          : "Two-step verification is no longer required.",
        "success",
      );
    } catch (problem) {
      requireMfa.checked = !wanted;
      announce(problem.message);
    } finally {
      requireMfa.disabled = false;
      requireMfa.focus();
    }
  });

  next.addEventListener("click", async () => {
    state.earlier.push(state.after);
    state.after = state.endCursor;
    await load();
  });
  previous.addEventListener("click", async () => {
    state.after = state.earlier.pop() ?? null;
    await load();
  });
  await load();
}

// What every page shares: the practice from the address, the header with the
// practice's name and (when signed in) who and Sign out, the title, and the
// guard that sends signed-out visitors of staff pages to sign-in.
import { ApiError, request, whenSignedOut, whenTwoStepRequired } from "./api.js";
import { announce } from "./forms.js";

/** The practice's slug: the first segment of the address. */
export function practiceSlug() {
  return decodeURIComponent(window.location.pathname.split("/")[1] || "");
}

/** An address inside this practice's pages, like pageUrl("staff/patients"). */
export function pageUrl(path) {
  return `/${encodeURIComponent(practiceSlug())}/${path}`;
}

const STAFF = ["ADMIN", "CLINICIAN"];

/**
 * Starts a page: `title` (neutral words: it shows in tabs and history),
 * `audience` "anyone" | "patient" | "staff" (who must be signed in).
 * Returns `{ practiceName, me }`, or null when the page cannot be shown
 * (unknown practice, or the visitor was sent to sign in).
 */
export async function startPage({ title, audience = "anyone" }) {
  const slug = practiceSlug();
  let layout;
  try {
    layout = await request("Layout", { practice: slug });
  } catch (problem) {
    renderHeader(null, null);
    announce(problem instanceof ApiError ? problem.message : String(problem));
    return null;
  }
  const { practiceName, me } = layout;
  const signedIn = me && me.practice.slug === slug ? me : null;
  renderHeader(practiceName, signedIn);
  if (!practiceName) {
    document.title = "Not found";
    const main = document.getElementById("content");
    main.replaceChildren();
    const heading = document.createElement("h1");
    heading.textContent = "There is no practice at this address";
    const text = document.createElement("p");
    text.textContent = "Please check the link you followed, or ask your practice for it.";
    main.append(heading, text);
    return null;
  }
  document.title = `${title} · ${practiceName}`;
  const toSignIn = () => {
    if (audience === "staff") {
      const next = window.location.pathname + window.location.search;
      window.location.replace(`${pageUrl("staff/sign-in")}?next=${encodeURIComponent(next)}`);
    } else {
      window.location.replace(pageUrl("sign-in"));
    }
  };
  if (audience === "staff" && !(signedIn && STAFF.includes(signedIn.role))) {
    toSignIn();
    return null;
  }
  if (audience === "patient" && !signedIn) {
    toSignIn();
    return null;
  }
  if (audience !== "anyone") {
    // A session that ends while the page is open: the next request goes to sign-in.
    whenSignedOut(toSignIn);
  }
  if (audience === "staff") renderStaffNavigation(signedIn.role);
  if (signedIn && STAFF.includes(signedIn.role)) {
    // The practice requires two-step verification and this member of staff
    // has none yet: enrol first, then back to the page asked for.
    whenTwoStepRequired(() => {
      const next = window.location.pathname + window.location.search;
      window.location.replace(`${pageUrl("staff/two-step")}?next=${encodeURIComponent(next)}`);
    });
  }
  return { practiceName, me: signedIn };
}

// Staff pages' navigation: each link only for the roles that may use its page.
const STAFF_LINKS = [
  { path: "staff/patients", label: "Patients", roles: STAFF },
  { path: "staff/team", label: "Staff", roles: ["ADMIN"] },
  { path: "staff/audit", label: "Audit trail", roles: ["ADMIN"] },
  { path: "staff/account", label: "Your account", roles: STAFF },
];

function renderStaffNavigation(role) {
  const nav = document.createElement("nav");
  nav.className = "staff-nav";
  nav.setAttribute("aria-label", "Staff pages");
  const list = document.createElement("ul");
  const here = window.location.pathname;
  for (const link of STAFF_LINKS.filter((l) => l.roles.includes(role))) {
    const item = document.createElement("li");
    const anchor = document.createElement("a");
    anchor.href = pageUrl(link.path);
    anchor.textContent = link.label;
    // A patient's own page is still under Patients.
    if (here === anchor.pathname || here.startsWith(`${anchor.pathname}/`)) {
      anchor.setAttribute("aria-current", "page");
    }
    item.append(anchor);
    list.append(item);
  }
  nav.append(list);
  document.getElementById("site-header").append(nav);
}

/**
 * For a page only some roles may use: true when `me` has one of `roles`,
 * else the page says plainly that it is not available to this role.
 */
export function allowRoles(me, roles) {
  if (roles.includes(me.role)) return true;
  const main = document.getElementById("content");
  const heading = document.createElement("h1");
  heading.textContent = "Not available to your role";
  const text = document.createElement("p");
  text.textContent = "This page is for practice administrators. Ask one if you need something from it.";
  const back = document.createElement("p");
  const link = document.createElement("a");
  link.href = homeFor(me.role);
  link.textContent = "Back to patients";
  back.append(link);
  main.replaceChildren(heading, text, back);
  return false;
}

function renderHeader(practiceName, me) {
  const header = document.getElementById("site-header");
  const name = document.createElement("p");
  name.className = "practice-name";
  name.textContent = practiceName || "Client portal";
  const nav = document.createElement("nav");
  nav.setAttribute("aria-label", "Account");
  if (me) {
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = `Signed in as ${me.email}`;
    const signOut = document.createElement("button");
    signOut.type = "button";
    signOut.className = "secondary";
    signOut.textContent = "Sign out";
    signOut.addEventListener("click", () => signOutAndLeave(me));
    nav.append(who, signOut);
  }
  header.replaceChildren(name, nav);
}

async function signOutAndLeave(me) {
  try {
    await request("SignOut");
  } catch (problem) {
    announce(problem.message);
    return;
  }
  const staff = STAFF.includes(me.role);
  window.location.assign(pageUrl(staff ? "staff/sign-in" : "sign-in"));
}

/** Where a member of staff or a patient goes once signed in. */
export function homeFor(role) {
  return pageUrl(STAFF.includes(role) ? "staff/patients" : "account");
}

/** A `next` address from the query, only when it is one of this practice's staff pages. */
export function safeNext() {
  const next = new URLSearchParams(window.location.search).get("next") || "";
  return next.startsWith(`${pageUrl("staff/")}`) && !next.startsWith("//") ? next : null;
}

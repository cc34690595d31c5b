// The one way pages talk to the service: POST /graphql with a trusted
// document's id (documents.js, made by `make web-documents`), the web app's
// header (X-Portal-Client: web, which with the browser's Origin lets the API
// read the HttpOnly session cookie), and errors turned into plain sentences.
import { documentIds } from "./documents.js";

// Top-level error codes (extensions.code) in words a patient or staff member can act on.
const MESSAGES = {
  UNAUTHENTICATED: "You are signed out. Please sign in again.",
  FORBIDDEN: "Your account may not do this.",
  MFA_REQUIRED: "Your practice requires two-step verification before you continue.",
  RATE_LIMITED: "Too many attempts. Please wait a minute and try again.",
  BAD_USER_INPUT: "Something in the request was not right. Please check and try again.",
  SERVICE_UNAVAILABLE: "The service is briefly unavailable. Please try again in a moment.",
  TIMEOUT: "That took too long. Please try again.",
  INTERNAL_SERVER_ERROR: "Something went wrong on our side. Please try again later.",
  PERSISTED_DOCUMENT_NOT_FOUND: "This page is out of date. Please reload it.",
  NETWORK: "The service cannot be reached. Check your connection and try again.",
};

// What a page does when the session turns out to be over (idled out, ended
// elsewhere, access revoked): layout.js sends signed-in pages to sign-in.
let signedOutHandler = null;

/** Registers what to do when a request answers UNAUTHENTICATED. */
export function whenSignedOut(handler) {
  signedOutHandler = handler;
}

// What a staff page does when the practice requires two-step verification
// and this member of staff has none yet (MFA_REQUIRED): layout.js sends them
// to the enrolment page.
let twoStepRequiredHandler = null;

/** Registers what to do when a request answers MFA_REQUIRED. */
export function whenTwoStepRequired(handler) {
  twoStepRequiredHandler = handler;
}

/** A request that failed as a whole (a top-level error, or no answer at all). */
export class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** The sentence to show for a top-level error code. */
export function messageFor(code) {
  return MESSAGES[code] || MESSAGES.INTERNAL_SERVER_ERROR;
}

/**
 * Runs the operation `name` (a file of portal/web/documents/) and returns its
 * `data`. A top-level error throws an ApiError (its `code` and a sentence),
 * except those listed in `allow`, which leave their field null.
 */
export async function request(name, variables = {}, { allow = [] } = {}) {
  const documentId = documentIds[name];
  if (!documentId) throw new Error(`No web document named ${name}`);
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Portal-Client": "web" },
      body: JSON.stringify({ documentId, variables }),
    });
  } catch {
    throw new ApiError("NETWORK", messageFor("NETWORK"));
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError("INTERNAL_SERVER_ERROR", messageFor("INTERNAL_SERVER_ERROR"));
  }
  const errors = (body.errors || []).filter((e) => !allow.includes(e.extensions?.code));
  if (errors.length > 0) {
    const code = errors[0].extensions?.code || "INTERNAL_SERVER_ERROR";
    if (code === "UNAUTHENTICATED" && signedOutHandler) signedOutHandler();
    if (code === "MFA_REQUIRED" && twoStepRequiredHandler) twoStepRequiredHandler();
    throw new ApiError(code, messageFor(code));
  }
  return body.data;
}

/**
 * A mutation's union result: `{ ok: value }` for its success type, or
 * `{ failure: { code, message, field } }` for a member implementing Error.
 */
export function outcome(result) {
  if (result && typeof result.code === "string") {
    return { failure: { code: result.code, message: result.message, field: result.field } };
  }
  return { ok: result };
}

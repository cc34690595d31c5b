// The patient's own page (phase 1: who is signed in; the rest comes with the account pages).
import { startPage } from "../layout.js";

const page = await startPage({ title: "Your account", audience: "patient" });
if (page) {
  document.getElementById("account-email").textContent = page.me.email;
}

// The practice's patients: search, pages of 25, and (ADMIN) a new patient.
import { outcome, request } from "../api.js";
import { announce, formatDate, onSubmit, showFailure } from "../forms.js";
import { pageUrl, startPage } from "../layout.js";

const PAGE_SIZE = 25;

const page = await startPage({ title: "Patients", audience: "staff" });
if (page) {
  const rows = document.getElementById("rows");
  const summary = document.getElementById("summary");
  const previous = document.getElementById("previous");
  const next = document.getElementById("next");
  // The cursors of the pages before this one, to go back.
  let state = { search: "", after: null, earlier: [], endCursor: null };

  const load = async () => {
    let data;
    try {
      data = await request("Patients", {
        search: state.search || null,
        first: PAGE_SIZE,
        after: state.after,
      });
    } catch (problem) {
      announce(problem.message);
      return;
    }
    const { edges, pageInfo, totalCount } = data.patients;
    rows.replaceChildren(...edges.map(({ node }) => row(node)));
    const from = state.earlier.length * PAGE_SIZE + (edges.length ? 1 : 0);
    const to = state.earlier.length * PAGE_SIZE + edges.length;
    summary.textContent =
      totalCount === 0
        ? state.search
          ? "No patient matches that search."
          : "No patients yet."
        : `Showing ${from}–${to} of ${totalCount} patient${totalCount === 1 ? "" : "s"}`;
    state.endCursor = pageInfo.endCursor;
    previous.disabled = state.earlier.length === 0;
    next.disabled = !pageInfo.hasNextPage;
  };

  const row = (patient) => {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    const link = document.createElement("a");
    link.href = pageUrl(`staff/patients/${encodeURIComponent(patient.id)}`);
    link.textContent = `${patient.lastName}, ${patient.firstName}`;
    name.append(link);
    const born = document.createElement("td");
    born.className = "hide-small";
    born.textContent = formatDate(patient.dateOfBirth);
    const email = document.createElement("td");
    email.textContent = patient.email || "—";
    tr.append(name, born, email);
    return tr;
  };

  const search = async (text) => {
    state = { search: text.trim(), after: null, earlier: [], endCursor: null };
    await load();
  };
  onSubmit(document.getElementById("search"), async (values) => search(values.search));
  // As they type, once they pause: one request per pause, not per key.
  const searchText = document.getElementById("search-text");
  let pause = null;
  searchText.addEventListener("input", () => {
    window.clearTimeout(pause);
    pause = window.setTimeout(() => {
      if (searchText.value.trim() !== state.search) search(searchText.value);
    }, 300);
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

  if (page.me.role === "ADMIN") {
    const add = document.getElementById("add-patient");
    const dialog = document.getElementById("new-patient");
    const form = document.getElementById("new-patient-form");
    add.hidden = false;
    add.addEventListener("click", () => {
      form.reset();
      dialog.showModal();
    });
    document.getElementById("cancel-new-patient").addEventListener("click", () => dialog.close());
    onSubmit(form, async (values) => {
      const input = {
        firstName: values.firstName,
        lastName: values.lastName,
        dateOfBirth: values.dateOfBirth || null,
        email: values.email || null,
        phone: values.phone || null,
      };
      const data = await request("CreatePatient", { input });
      const result = outcome(data.createPatient);
      if (result.failure) {
        showFailure(form, result.failure);
        return;
      }
      window.location.assign(pageUrl(`staff/patients/${result.ok.patient.id}`));
    });
  }
  await load();
}

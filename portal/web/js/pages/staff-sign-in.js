import { signInPage } from "../sign-in-flow.js";

signInPage({ title: "Staff sign in" });

import { signInPage } from "../sign-in-flow.js";

signInPage({ title: "Sign in" });

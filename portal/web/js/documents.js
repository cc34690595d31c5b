// Written by `make web-documents` from portal/web/documents/*.graphql: do not edit.
// Each operation's documentId (its SHA-256), which api.js sends instead of its text.
export const documentIds = Object.freeze({
  CompleteSignIn: "sha256:2f7a770aab19e9bb38a753ba2d6a800de4663a6191e6c5c9d6126852b83fac1d",
  CreateAccount: "sha256:7e02e58a18e8f1a7dc9f263bde33f5d9cb1f73d7cef60008e3f99721e373e65b",
  CreatePatient: "sha256:06de09c3393c20c9d23832d79c96ba23239ee41959f4fd6b25458c2287c6a07f",
  Invitation: "sha256:532ebc3b97ded24b7296b563e8c28935dd43462408098ee5241626e6022dd168",
  Layout: "sha256:8560c9bb7710c6228a9b4d1000d4ef00d6d50fd5b807352827ec6b3c1fff4440",
  Patient: "sha256:42954e6c4ff3e1f5f29ef155363ac91299794ae42f7b007f8399aed169b9454f",
  PatientPortal: "sha256:6d575ab325f90473a796e9b3583771e94426e91a3a4ed5819a89901d87c765a0",
  Patients: "sha256:850e183e05ba3789a2d19a2b7229bcae21dcabcd4acb84d9c18006a78abc126b",
  SendInvitation: "sha256:7e20c8571d5b4689e32393af257de3c2b0310a5564f08770d02d9adcde550257",
  SignIn: "sha256:e4bd0691eda84bef192c6ca10295261984749eb61f25d5d02334fcf34757dfa6",
  SignOut: "sha256:3a18697eee7fc662816d62c7a584c84558a8bdff3a1206730945e7268cbe265b",
});

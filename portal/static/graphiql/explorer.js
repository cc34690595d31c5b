// GraphiQL with the explorer plugin, against this service's /graphql.
// Sign in with the `login` mutation, then put its token in the Headers tab:
// {"Authorization": "Bearer <token>"}.
(function () {
  "use strict";

  const EXAMPLE_QUERY = `# The client portal API.
#
# Sign in first:
#
#   mutation {
#     login(practice: "your-practice", email: "you@example.org", password: "…") {
#       __typename
#       ... on LoginSuccess { token }
#       ... on Error { code message }
#     }
#   }
#
# then open Headers below and add {"Authorization": "Bearer <token>"}.
{
  me { id email role }
}
`;

  const parameters = {};
  for (const entry of window.location.search.slice(1).split("&")) {
    const eq = entry.indexOf("=");
    if (eq >= 0) {
      parameters[decodeURIComponent(entry.slice(0, eq))] = decodeURIComponent(
        entry.slice(eq + 1),
      );
    }
  }

  function updateURL(data) {
    Object.assign(parameters, data);
    const search = Object.keys(parameters)
      .filter((key) => Boolean(parameters[key]))
      .map((key) => encodeURIComponent(key) + "=" + encodeURIComponent(parameters[key]))
      .join("&");
    history.replaceState(null, "", "?" + search);
  }

  const fetcher = GraphiQL.createFetcher({ url: window.location.href.split("?")[0] });

  function Explorer() {
    const [query, setQuery] = React.useState(parameters.q || EXAMPLE_QUERY);
    const [variables, setVariables] = React.useState(parameters.variables);
    const explorerPlugin = GraphiQLPluginExplorer.explorerPlugin();
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      plugins: [explorerPlugin],
      query: query,
      variables: variables,
      onEditQuery: (text) => {
        setQuery(text);
        updateURL({ q: text });
      },
      onEditVariables: (text) => {
        setVariables(text);
        updateURL({ variables: text });
      },
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      // Headers hold a session token: kept for this tab only, never in the URL.
      shouldPersistHeaders: false,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(Explorer),
  );
})();

// The npm `graphql-sse` client (its UMD build, installed with GraphiQL's assets by
// app/graphiql_assets/build), on Node's fetch, in distinct connections mode:
// node graphql_sse_client.js URL TOKEN QUERY VARIABLES_JSON [SECONDS]
// Sends `Authorization: Bearer TOKEN`, subscribes to QUERY and prints one JSON line per
// event: {"connected": true}, {"next": ...}, {"error": ...}, {"complete": true}.
// Exits when the subscription completes or fails, or after SECONDS.
const path = require("path");
const { createClient } = require(
  path.join(__dirname, "../../app/graphiql_assets/dist/graphql-sse/umd/graphql-sse.min.js"),
);
const [url, token, query, variables = "{}", seconds = "10"] = process.argv.slice(2);
const say = (event) => process.stdout.write(JSON.stringify(event) + "\n");
const client = createClient({
  url,
  headers: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
  on: { connected: () => say({ connected: true }) },
});
const done = () => {
  client.dispose();
  setTimeout(() => process.exit(0), 100);
};
client.subscribe(
  { query, variables: JSON.parse(variables) },
  {
    next: (result) => say({ next: result }),
    error: (error) => {
      const response = error && error.response;
      say({ error: String((error && error.message) || error), status: response && response.status });
      done();
    },
    complete: () => {
      say({ complete: true });
      done();
    },
  },
);
setTimeout(done, Number(seconds) * 1000);

// The npm `graphql-ws` client (the UMD build GraphiQL's page loads), on Node's WebSocket:
// node --experimental-websocket graphql_ws_client.js URL TOKEN QUERY [SECONDS]
// Sends the token in the connection_init payload, subscribes to QUERY and prints one JSON
// line per event: {"connected": true}, {"next": ...}, {"error": ...}, {"closed": code}.
const path = require("path");
const { createClient } = require(
  path.join(__dirname, "../../app/graphiql_assets/dist/graphql-ws/umd/graphql-ws.min.js"),
);
const [url, token, query, seconds = "10"] = process.argv.slice(2);
const say = (event) => process.stdout.write(JSON.stringify(event) + "\n");
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  lazy: false,
  retryAttempts: 0,
  on: {
    connected: () => say({ connected: true }),
    closed: (event) => say({ closed: event.code, reason: event.reason }),
  },
  onNonLazyError: () => {},
});
client.subscribe(
  { query },
  {
    next: (result) => say({ next: result }),
    error: (error) => say({ error: String(error && (error.reason || error.message || error)) }),
    complete: () => say({ complete: true }),
  },
);
setTimeout(() => {
  client.dispose();
  setTimeout(() => process.exit(0), 200);
}, Number(seconds) * 1000);

// The page's one Socket.IO connection, for answers streamed over WebSocket. Opened on
// first use (a page that keeps to SSE never connects) and shared by every answer:
// sluice-stream.js tells its streams apart. The session cookie goes with it.
import { io } from "../vendor/socket.io/socket.io.esm.min.js";

let socket = null;

/** The page's socket, connecting it the first time it is asked for. */
export function pageSocket() {
  socket ??= io({ transports: ["websocket"] });
  return socket;
}

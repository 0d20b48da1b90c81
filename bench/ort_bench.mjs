// ort_bench: forward-pass time of an ONNX MobileNetV2 with onnxruntime-node
// (CPU), the ONNX Runtime peer of featx's benchmark.
//
//   node bench/ort_bench.mjs -m MODEL.onnx [--threads N] [--batch B] [--size HxW]
//        [--runs R] [--warmup W] [--input X.npy] [--dump OUT.npy]
//
// Session: intraOpNumThreads N, interOpNumThreads 1, sequential execution,
// graphOptimizationLevel 'all'. Only session.run is timed, after W warm-up
// runs. Input: --input (float32 .npy, (B,H,W,3) in [0, 1]) or, by default,
// the same LCG pixels `featx bench` generates. The graph from
// export_weights.py --onnx includes the input normalisation (Mul/Add), so
// ORT, like featx, starts from [0, 1] pixels. --dump writes the "features"
// output of the last timed run as float32 .npy (for the same-features check).
//
// onnxruntime-node is resolved from tools/ort/node_modules (npm install
// --ignore-scripts there) or NODE_PATH.

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { readNpy, writeNpy } from '../tools/ort/npy.mjs';

const here = dirname(fileURLToPath(import.meta.url));

function fail(message) {
  process.stderr.write(`ort_bench: ${message}\n`);
  process.exit(2);
}

function loadOrt() {
  // tools/ort is where the project installs onnxruntime-node; fall back to
  // the normal resolution (NODE_PATH, a node_modules above bench/).
  for (const base of [join(here, '..', 'tools', 'ort', 'package.json'), import.meta.url]) {
    try {
      return { ort: createRequire(base)('onnxruntime-node'), require: createRequire(base) };
    } catch (e) { /* try the next place */ }
  }
  fail('cannot load onnxruntime-node; run "npm install --ignore-scripts" in tools/ort');
}

// The pixels `featx bench` feeds: x = (state >> 8) / 2^24 after each LCG step.
function lcgInput(count) {
  const data = new Float32Array(count);
  let state = 12345;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    data[i] = (state >>> 8) / 16777216;
  }
  return data;
}

function parseArgs(argv) {
  const o = { model: '', threads: 1, batch: 1, h: 0, w: 0, runs: 20, warmup: 3, input: '', dump: '' };
  const int = (flag, v) => {
    if (!/^\d+$/.test(v) || (Number(v) < 1 && flag !== '--warmup')) fail(`${flag}: bad value '${v}'`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (v === undefined) fail(`option ${a} needs a value (or is unknown)`);
    if (a === '-m' || a === '--model') o.model = v;
    else if (a === '--threads') o.threads = int(a, v);
    else if (a === '--batch') o.batch = int(a, v);
    else if (a === '--runs') o.runs = int(a, v);
    else if (a === '--warmup') o.warmup = int(a, v);
    else if (a === '--input') o.input = v;
    else if (a === '--dump') o.dump = v;
    else if (a === '--size') {
      const m = /^(\d+)x(\d+)$/.exec(v);
      if (!m) fail(`--size: expected HxW, got '${v}'`);
      o.h = Number(m[1]); o.w = Number(m[2]);
    } else fail(`unknown option ${a}`);
  }
  if (!o.model) fail('missing -m MODEL.onnx');
  return o;
}

function median(v) {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

// Nearest rank, as featx bench and xnnpack_runner print it.
function p90(v) {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.ceil(0.9 * s.length) - 1];
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const { ort, require } = loadOrt();
  const t0 = process.hrtime.bigint();
  let session;
  try {
    session = await ort.InferenceSession.create(o.model, {
      intraOpNumThreads: o.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (e) {
    fail(`${o.model}: ${e.message.split('\n')[0]}`);
  }
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;

  let shape, data;
  if (o.input) {
    ({ shape, data } = readNpy(o.input));
    if (shape.length !== 4 || shape[3] !== 3) fail(`${o.input}: expected shape (B,H,W,3)`);
  } else {
    // The ONNX graph is built for one H x W; take it from the model's input
    // unless --size says otherwise.
    let h = o.h, w = o.w;
    if (!h) {
      const meta = session.inputMetadata?.[0] ?? session.inputMetadata?.input;
      const dims = meta?.shape ?? [];
      h = Number(dims[1]); w = Number(dims[2]);
      if (!(h > 0 && w > 0)) fail('cannot read the input size from the model; pass --size HxW');
    }
    shape = [o.batch, h, w, 3];
    data = lcgInput(o.batch * h * w * 3);
  }
  const feeds = { input: new ort.Tensor('float32', data, shape) };

  let out;
  for (let i = 0; i < o.warmup; i++) out = await session.run(feeds);
  const ms = [];
  for (let i = 0; i < o.runs; i++) {
    const a = process.hrtime.bigint();
    out = await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - a) / 1e6);
  }
  const version = require('onnxruntime-node/package.json').version;
  process.stdout.write(`ort_ms_median ${median(ms).toFixed(3)}\n`);
  process.stdout.write(`ort_ms_min ${Math.min(...ms).toFixed(3)}\n`);
  process.stdout.write(`ort_ms_p90 ${p90(ms).toFixed(3)}\n`);
  process.stdout.write(`ort_load_ms ${loadMs.toFixed(3)}\n`);
  process.stdout.write(`batch ${shape[0]} size ${shape[1]}x${shape[2]} threads ${o.threads} runs ${o.runs} onnxruntime-node ${version}\n`);
  if (o.dump) {
    const f = out.features;
    writeNpy(o.dump, f.dims.map(Number), f.data);
  }
}

main().catch((e) => fail(e && e.message ? e.message.split('\n')[0] : String(e)));

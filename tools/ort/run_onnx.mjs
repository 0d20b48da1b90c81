// Run an ONNX model with ONNX Runtime (CPU) on a float32 .npy, write a float32 .npy.
//
//   node tools/ort/run_onnx.mjs MODEL.onnx INPUT.npy OUTPUT.npy [--output-name features]
//        [--input-name input] [--print-version]
//
// Single-threaded (intra and inter op) so reruns give the same bits; the
// goldens' --check relies on that. Exit code 2 with one line on stderr for
// any failure.

import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function fail(message) {
  process.stderr.write(`run_onnx: ${message}\n`);
  process.exit(2);
}

// Minimal .npy (format 1.0/2.0/3.0) reader: little-endian float32, C order only.
function readNpy(path) {
  const buf = readFileSync(path);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') fail(`${path}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const order = /'fortran_order':\s*(True|False)/.exec(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !order || !shapeText) fail(`${path}: unreadable .npy header`);
  if (descr[1] !== '<f4') fail(`${path}: dtype ${descr[1]}, expected float32 '<f4'`);
  if (order[1] === 'True') fail(`${path}: Fortran order is not supported`);
  const shape = shapeText[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  if (buf.length - start !== count * 4) fail(`${path}: ${buf.length - start} data bytes for shape (${shape})`);
  // Copy into a fresh, aligned buffer: the data offset need not be a multiple of 4.
  const data = new Float32Array(count);
  new Uint8Array(data.buffer).set(buf.subarray(start));
  return { shape, data };
}

function writeNpy(path, shape, data) {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';  // pad so data starts 64-aligned
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  writeFileSync(path, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

function parseArgs(argv) {
  const positional = [];
  const opts = { outputName: 'features', inputName: 'input', printVersion: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--output-name' || a === '--input-name') {
      if (i + 1 >= argv.length) fail(`${a} needs a value`);
      opts[a === '--output-name' ? 'outputName' : 'inputName'] = argv[++i];
    } else if (a === '--print-version') {
      opts.printVersion = true;
    } else if (a.startsWith('--')) {
      fail(`unknown option ${a}`);
    } else {
      positional.push(a);
    }
  }
  return { positional, opts };
}

async function main() {
  const { positional, opts } = parseArgs(process.argv.slice(2));
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    fail(`cannot load onnxruntime-node (${e.message.split('\n')[0]}); ` +
         'run "npm install --ignore-scripts" in tools/ort or set NODE_PATH');
  }
  if (opts.printVersion) {
    const pkg = require('onnxruntime-node/package.json');
    process.stdout.write(`onnxruntime-node ${pkg.version}\n`);
    if (positional.length === 0) return;
  }
  if (positional.length !== 3) fail('usage: run_onnx.mjs MODEL.onnx INPUT.npy OUTPUT.npy [--output-name NAME]');
  const [modelPath, inputPath, outputPath] = positional;
  const input = readNpy(inputPath);
  let session;
  try {
    session = await ort.InferenceSession.create(modelPath, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
    });
  } catch (e) {
    fail(`${modelPath}: ${e.message.split('\n')[0]}`);
  }
  if (!session.outputNames.includes(opts.outputName)) {
    fail(`${modelPath}: no output named ${opts.outputName} (has ${session.outputNames.join(', ')})`);
  }
  let results;
  try {
    const feeds = { [opts.inputName]: new ort.Tensor('float32', input.data, input.shape) };
    results = await session.run(feeds, [opts.outputName]);
  } catch (e) {
    fail(`${modelPath}: ${e.message.split('\n')[0]}`);
  }
  const out = results[opts.outputName];
  writeNpy(outputPath, out.dims.map(Number), out.data);
}

main().catch((e) => fail(e && e.message ? e.message.split('\n')[0] : String(e)));

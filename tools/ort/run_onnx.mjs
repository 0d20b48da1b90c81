// Run an ONNX model with ONNX Runtime (CPU) on a float32 .npy, write a float32 .npy.
//
//   node tools/ort/run_onnx.mjs MODEL.onnx INPUT.npy OUTPUT.npy [--output-name features]
//        [--input-name input] [--print-version]
//
// Single-threaded (intra and inter op) so reruns give the same bits; the
// goldens' --check relies on that. Exit code 2 with one line on stderr for
// any failure.

import { createRequire } from 'node:module';

import { readNpy, writeNpy } from './npy.mjs';

const require = createRequire(import.meta.url);

function fail(message) {
  process.stderr.write(`run_onnx: ${message}\n`);
  process.exit(2);
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

// Minimal .npy I/O for the Node.js runners (run_onnx.mjs, bench/ort_bench.mjs):
// read format 1.0/2.0/3.0 and write 1.0, little-endian float32, C order only.
// Errors are thrown as Error with a one-line message naming the file.

import { readFileSync, writeFileSync } from 'node:fs';

export function readNpy(path) {
  const buf = readFileSync(path);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${path}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const order = /'fortran_order':\s*(True|False)/.exec(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !order || !shapeText) throw new Error(`${path}: unreadable .npy header`);
  if (descr[1] !== '<f4') throw new Error(`${path}: dtype ${descr[1]}, expected float32 '<f4'`);
  if (order[1] === 'True') throw new Error(`${path}: Fortran order is not supported`);
  const shape = shapeText[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  if (buf.length - start !== count * 4) throw new Error(`${path}: ${buf.length - start} data bytes for shape (${shape})`);
  // Copy into a fresh, aligned buffer: the data offset need not be a multiple of 4.
  const data = new Float32Array(count);
  new Uint8Array(data.buffer).set(buf.subarray(start));
  return { shape, data };
}

export function writeNpy(path, shape, data) {
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

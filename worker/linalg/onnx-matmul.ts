/**
 * The onnxruntime-node matrix-product backend: a one-node ONNX graph (Gemm with transA = 0
 * or 1, symbolic dimensions) built in memory and run through the native binding's
 * synchronous `run`, because kernels are synchronous functions. onnxruntime-node's public
 * `InferenceSession.run` only defers that same native call to a later tick (setImmediate).
 *
 * One intra-op thread by default: the thread pool already runs one block per core, and
 * MLAS's single-thread kernels are what make this ~100× faster than a JS loop.
 */
import { createRequire } from 'node:module';
import type { MatmulBackend } from './matmul-backend.js';

interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
}
type OrtTensorCtor = new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
interface NativeSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: Record<string, unknown>): void;
  run(feeds: Record<string, OrtTensor>, fetches: Record<string, null>, options: Record<string, unknown>): Record<string, OrtTensor>;
}
interface BindingModule {
  binding: { InferenceSession: new () => NativeSession };
  initOrt(): void;
}

// ---- a minimal protobuf writer for the ONNX ModelProto we need ----

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v > 127) {
    out.push((v % 128) | 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}
const tag = (field: number, wire: number): number[] => varint(field * 8 + wire);
const lenField = (field: number, bytes: readonly number[]): number[] => [...tag(field, 2), ...varint(bytes.length), ...bytes];
const strField = (field: number, s: string): number[] => lenField(field, [...Buffer.from(s, 'utf8')]);
const intField = (field: number, v: number): number[] => [...tag(field, 0), ...varint(v)];

/** ValueInfoProto: a float tensor with symbolic dimensions. */
function valueInfo(name: string, dims: readonly string[]): number[] {
  const shape = dims.flatMap((d) => lenField(1, strField(2, d))); // TensorShapeProto.dim { dim_param }
  const tensorType = [...intField(1, 1), ...lenField(2, shape)]; // elem_type FLOAT, shape
  return [...strField(1, name), ...lenField(2, lenField(1, tensorType))]; // name, TypeProto { tensor_type }
}

/** ModelProto bytes of C = op(A)·B via Gemm (opset 17, IR 8). */
export function gemmModel(transA: boolean): Uint8Array {
  const attr = [...strField(1, 'transA'), ...intField(20, 2), ...intField(3, transA ? 1 : 0)]; // AttributeProto INT
  const node = [...strField(1, 'A'), ...strField(1, 'B'), ...strField(2, 'C'), ...strField(3, 'gemm'), ...strField(4, 'Gemm'), ...lenField(5, attr)];
  const graph = [
    ...lenField(1, node),
    ...strField(2, 'weightspace-gemm'),
    ...lenField(11, valueInfo('A', transA ? ['k', 'm'] : ['m', 'k'])),
    ...lenField(11, valueInfo('B', ['k', 'n'])),
    ...lenField(12, valueInfo('C', ['m', 'n'])),
  ];
  const opset = [...strField(1, ''), ...intField(2, 17)];
  return Uint8Array.from([...intField(1, 8), ...strField(2, 'weightspace'), ...lenField(7, graph), ...lenField(8, opset)]);
}

/** The backend, or undefined when onnxruntime-node is not installed or does not load here. */
export function loadOnnxBackend(threads: number): MatmulBackend | undefined {
  let Tensor: OrtTensorCtor;
  let sessions: [NativeSession, NativeSession];
  try {
    const load = createRequire(import.meta.url);
    const mod = load('onnxruntime-node/dist/binding.js') as BindingModule;
    Tensor = (load('onnxruntime-node') as { Tensor: OrtTensorCtor }).Tensor;
    mod.initOrt();
    const open = (transA: boolean): NativeSession => {
      const s = new mod.binding.InferenceSession();
      const bytes = gemmModel(transA);
      s.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
      return s;
    };
    sessions = [open(false), open(true)];
  } catch {
    return undefined;
  }
  return {
    name: 'onnxruntime',
    gemm(transA, a, b, m, k, n, c) {
      const session = sessions[transA ? 1 : 0];
      const dimsA = transA ? [k, m] : [m, k];
      const out = session.run(
        { A: new Tensor('float32', a.length === m * k ? a : a.subarray(0, m * k), dimsA), B: new Tensor('float32', b.length === k * n ? b : b.subarray(0, k * n), [k, n]) },
        { C: null },
        {},
      );
      c.set(out.C!.data as Float32Array);
    },
  };
}

/**
 * A small WebAssembly binary writer: just what the generated convolution kernels (conv-direct.ts) need.
 *
 * Each module imports the wasm backend's memory as `env.memory` (so kernels read and write tensors in place)
 * and exports functions whose parameters are all i32 and that return nothing. The encoding follows the
 * WebAssembly core specification (binary format, section 5) and the fixed-width SIMD proposal's opcodes;
 * `WebAssembly.validate` checks every module before it is used, and a test disassembles one with wabt.
 */

const I32 = 0x7f;
const V128 = 0x7b;

/** Unsigned LEB128. */
function uleb(out: number[], n: number): void {
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
}

/** Signed LEB128 (i32). */
function sleb(out: number[], n: number): void {
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

/** The body of one function: instructions appended in order; locals are numbered params first. */
export class Code {
  readonly bytes: number[] = [];
  private nextLocal: number;
  readonly i32Locals: number[] = [];
  readonly v128Locals: number[] = [];

  constructor(readonly params: number) {
    this.nextLocal = params;
  }

  /** A new i32 local (its index). Declare all i32 locals before the first v128 local. */
  i32(): number {
    if (this.v128Locals.length > 0) throw new Error('emit: declare i32 locals first');
    this.i32Locals.push(this.nextLocal);
    return this.nextLocal++;
  }

  v128(): number {
    this.v128Locals.push(this.nextLocal);
    return this.nextLocal++;
  }

  private simd(op: number): this {
    this.bytes.push(0xfd);
    uleb(this.bytes, op);
    return this;
  }

  private memarg(offset: number): void {
    uleb(this.bytes, 2); // alignment hint: 4 bytes (tensors are float32)
    uleb(this.bytes, offset);
  }

  get(local: number): this {
    this.bytes.push(0x20);
    uleb(this.bytes, local);
    return this;
  }

  set(local: number): this {
    this.bytes.push(0x21);
    uleb(this.bytes, local);
    return this;
  }

  const(n: number): this {
    this.bytes.push(0x41);
    sleb(this.bytes, n);
    return this;
  }

  add(): this {
    this.bytes.push(0x6a);
    return this;
  }

  /** local += n */
  inc(local: number, n: number): this {
    if (n === 0) return this;
    return this.get(local).const(n).add().set(local);
  }

  mulI(): this {
    this.bytes.push(0x6c);
    return this;
  }

  ltU(): this {
    this.bytes.push(0x49);
    return this;
  }

  subI(): this {
    this.bytes.push(0x6b);
    return this;
  }

  divU(): this {
    this.bytes.push(0x6e);
    return this;
  }

  remU(): this {
    this.bytes.push(0x70);
    return this;
  }

  /** a, b, condition on the stack → condition ≠ 0 ? a : b */
  select(): this {
    this.bytes.push(0x1b);
    return this;
  }

  /** `count` ≥ 1 passes of `body` with `counter` = 0, 1, …; `count` is a constant or `{ local }`, an i32 local. */
  loop(counter: number, count: number | { local: number }, body: () => void): this {
    this.const(0).set(counter);
    this.bytes.push(0x03, 0x40); // loop, no result
    body();
    this.inc(counter, 1).get(counter);
    if (typeof count === 'number') this.const(count);
    else this.get(count.local);
    this.ltU();
    this.bytes.push(0x0d, 0x00, 0x0b); // br_if 0, end
    return this;
  }

  /** address on the stack → v128 */
  load(offset: number): this {
    this.simd(0x00).memarg(offset);
    return this;
  }

  /** address on the stack → one float32 in all four lanes */
  loadSplat(offset: number): this {
    this.simd(0x09).memarg(offset);
    return this;
  }

  /** address, v128 on the stack → stored */
  store(offset: number): this {
    this.simd(0x0b).memarg(offset);
    return this;
  }

  zero(): this {
    this.simd(0x0c);
    for (let i = 0; i < 16; i++) this.bytes.push(0);
    return this;
  }

  /** f32x4 with `value` in all four lanes */
  splatConst(value: number): this {
    this.simd(0x0c);
    const lane = new Uint8Array(new Float32Array([value]).buffer);
    for (let i = 0; i < 4; i++) for (const b of lane) this.bytes.push(b);
    return this;
  }

  mul(): this {
    return this.simd(0xe6);
  }

  subF(): this {
    return this.simd(0xe5);
  }

  neg(): this {
    return this.simd(0xe1);
  }

  addF(): this {
    return this.simd(0xe4);
  }

  /** a, b, c on the stack → a·b + c, fused or not as the machine does it (relaxed SIMD). */
  relaxedMadd(): this {
    return this.simd(0x105);
  }
}

export interface Func {
  name: string;
  code: Code;
}

/** A module importing env.memory and exporting `funcs`. */
export function moduleBytes(funcs: Func[]): Uint8Array<ArrayBuffer> {
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const section = (id: number, body: number[]) => {
    out.push(id);
    uleb(out, body.length);
    for (const b of body) out.push(b);
  };
  const name = (s: string, to: number[]) => {
    const bytes = new TextEncoder().encode(s);
    uleb(to, bytes.length);
    for (const b of bytes) to.push(b);
  };
  const paramCounts = [...new Set(funcs.map((f) => f.code.params))];
  const types: number[] = [];
  uleb(types, paramCounts.length);
  for (const n of paramCounts) {
    types.push(0x60);
    uleb(types, n);
    for (let i = 0; i < n; i++) types.push(I32);
    types.push(0x00);
  }
  section(1, types);
  const imports: number[] = [1];
  name('env', imports);
  name('memory', imports);
  imports.push(0x02, 0x00, 0x01); // memory, limits: min 1 page, no maximum
  section(2, imports);
  const fns: number[] = [];
  uleb(fns, funcs.length);
  for (const f of funcs) uleb(fns, paramCounts.indexOf(f.code.params));
  section(3, fns);
  const exports: number[] = [];
  uleb(exports, funcs.length);
  funcs.forEach((f, i) => {
    name(f.name, exports);
    exports.push(0x00);
    uleb(exports, i);
  });
  section(7, exports);
  const code: number[] = [];
  uleb(code, funcs.length);
  for (const f of funcs) {
    const body: number[] = [];
    const groups = [
      [f.code.i32Locals.length, I32],
      [f.code.v128Locals.length, V128],
    ].filter(([n]) => n > 0);
    uleb(body, groups.length);
    for (const [n, t] of groups) {
      uleb(body, n);
      body.push(t);
    }
    for (const b of f.code.bytes) body.push(b);
    body.push(0x0b);
    uleb(code, body.length);
    for (const b of body) code.push(b);
  }
  section(10, code);
  return new Uint8Array(out);
}

let relaxedProbe: boolean | undefined;

/** Whether this engine validates relaxed SIMD (`f32x4.relaxed_madd`): Node 22+ without flags, Node 20 only with one. */
export function relaxedSimdSupported(): boolean {
  if (relaxedProbe === undefined) {
    const code = new Code(1);
    const v = code.v128();
    code.zero().zero().zero().relaxedMadd().set(v);
    relaxedProbe = WebAssembly.validate(moduleBytes([{ name: 'probe', code }]));
  }
  return relaxedProbe;
}

/**
 * The generated kernels multiply-add with `f32x4.relaxed_madd` where the engine has relaxed SIMD: fused on x64 with FMA, 5–12% faster
 * here. Fused or not is fixed per machine, so a seed still gives the same weights run to run on one machine (not
 * across machines with and without FMA). CONVLAB_RELAXED=0 turns it off.
 */
let relaxedAllowed = !(typeof process !== 'undefined' && process.env?.CONVLAB_RELAXED === '0');

export function relaxedSimd(): boolean {
  return relaxedAllowed && relaxedSimdSupported();
}

/** Relaxed SIMD on (where supported) or off: for A/B runs and tests (the kernels' caches key on it). */
export function allowRelaxedSimd(on: boolean): void {
  relaxedAllowed = on;
}

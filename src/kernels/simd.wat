;; SIMD kernels that run on the wasm backend's own memory (imported, so tensors are used in place).
;; Built into simd-module.ts by `npm run build:wasm` (scripts/build-wasm.ts); a test checks that the
;; committed bytes are this source's.
(module
  (import "env" "memory" (memory 1))

  ;; dx of a 2x2, stride-2 max pool over NHWC data whose windows tile the input (even height and width)
  ;; and whose channel count is a multiple of 4: each dy goes to the first maximum of its window in
  ;; row-major order (TensorFlow's tie rule); the other three positions get 0. Four channels at a time.
  ;;   $x, $dy, $dx  byte addresses of the input [B,2·rows/B,2·wo,c], dy [rows,wo,c] and dx (like the input)
  ;;   $rows         batch x output rows;  $wo  output columns;  $c  channels (a multiple of 4)
  (func (export "maxPoolGrad2x2")
    (param $x i32) (param $dy i32) (param $dx i32) (param $rows i32) (param $wo i32) (param $c i32)
    (local $cb i32) (local $rs i32) (local $r i32) (local $ox i32) (local $p i32) (local $end i32) (local $gp i32)
    (local $a v128) (local $b v128) (local $e v128) (local $f v128) (local $g v128)
    (local $best v128) (local $mb v128) (local $me v128) (local $mf v128)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))                      ;; one pixel's channels, bytes
    (local.set $rs (i32.shl (i32.mul (local.get $cb) (local.get $wo)) (i32.const 1))) ;; one input row, bytes
    (local.set $gp (local.get $dy))
    (loop $rows
      (local.set $p (i32.mul (local.get $r) (i32.shl (local.get $rs) (i32.const 1)))) ;; top row of the pair
      (local.set $ox (i32.const 0))
      (loop $cols
        (local.set $end (i32.add (local.get $p) (local.get $cb)))
        (loop $channels
          ;; the window: a b / e f
          (local.set $a (v128.load (i32.add (local.get $x) (local.get $p))))
          (local.set $b (v128.load (i32.add (local.get $x) (i32.add (local.get $p) (local.get $cb)))))
          (local.set $e (v128.load (i32.add (local.get $x) (i32.add (local.get $p) (local.get $rs)))))
          (local.set $f (v128.load (i32.add (local.get $x) (i32.add (i32.add (local.get $p) (local.get $rs)) (local.get $cb)))))
          (local.set $g (v128.load (local.get $gp)))
          ;; strictly greater replaces the best so far, so ties stay with the earliest
          (local.set $mb (f32x4.gt (local.get $b) (local.get $a)))
          (local.set $best (v128.bitselect (local.get $b) (local.get $a) (local.get $mb)))
          (local.set $me (f32x4.gt (local.get $e) (local.get $best)))
          (local.set $best (v128.bitselect (local.get $e) (local.get $best) (local.get $me)))
          (local.set $mf (f32x4.gt (local.get $f) (local.get $best)))
          ;; the winner is the last position that replaced the best: f, else e, else b, else a
          (v128.store (i32.add (local.get $dx) (i32.add (i32.add (local.get $p) (local.get $rs)) (local.get $cb)))
            (v128.and (local.get $g) (local.get $mf)))
          (v128.store (i32.add (local.get $dx) (i32.add (local.get $p) (local.get $rs)))
            (v128.and (local.get $g) (v128.andnot (local.get $me) (local.get $mf))))
          (v128.store (i32.add (local.get $dx) (i32.add (local.get $p) (local.get $cb)))
            (v128.and (local.get $g) (v128.andnot (v128.andnot (local.get $mb) (local.get $me)) (local.get $mf))))
          (v128.store (i32.add (local.get $dx) (local.get $p))
            (v128.andnot (local.get $g) (v128.or (v128.or (local.get $mb) (local.get $me)) (local.get $mf))))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (local.set $gp (i32.add (local.get $gp) (i32.const 16)))
          (br_if $channels (i32.lt_u (local.get $p) (local.get $end))))
        (local.set $p (i32.add (local.get $p) (local.get $cb)))                  ;; past the window's right pixel
        (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
        (br_if $cols (i32.lt_u (local.get $ox) (local.get $wo))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br_if $rows (i32.lt_u (local.get $r) (local.get $rows)))))
)

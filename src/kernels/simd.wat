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

  ;; The filter gradient of a one-input-channel, stride-1 convolution, two taps and 16 output channels at a
  ;; time: dW[tap, o] = Σ_{n,y,x} xpad[n, y+i, x+j] · dy[n,y,x,o] over every output pixel, where xpad is the
  ;; input zero-padded so that every tap reads inside it (no bounds checks). Eight f32x4 accumulators (two
  ;; taps x 16 channels) plus two splats and one dy vector fit V8's 16 xmm registers; dy is loaded once per
  ;; pixel for both taps. The two taps may be the same (an odd tap count): both stores then write one sum.
  ;;   $xp         byte address of xpad[0, i0, j0] (tap 0's input for pixel (0,0,0))
  ;;   $dq         byte distance from tap 0's input to tap 1's
  ;;   $dy         byte address of dy[0,0,0,o0] (the first of the 16 channels)
  ;;   $dw0, $dw1  byte addresses of dW[tap0, o0] and dW[tap1, o0]
  ;;   $nb, $h, $w images, output rows and columns
  ;;   $cb         dy's pixel stride in bytes (4 x output channels)
  ;;   $rowSkip    bytes from the end of an xpad row's w pixels to the next row's start (4·(wp − w))
  ;;   $imgSkip    further bytes at the end of an image (4·wp·(hp − h))
  (func (export "convFilterGrad1x16")
    (param $xp i32) (param $dq i32) (param $dy i32) (param $dw0 i32) (param $dw1 i32)
    (param $nb i32) (param $h i32) (param $w i32) (param $cb i32) (param $rowSkip i32) (param $imgSkip i32)
    (local $n i32) (local $y i32) (local $end i32)
    (local $s0 v128) (local $s1 v128) (local $d v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (loop $images
      (local.set $y (i32.const 0))
      (loop $rows
        (local.set $end (i32.add (local.get $xp) (i32.shl (local.get $w) (i32.const 2))))
        (loop $pixels
          (local.set $s0 (v128.load32_splat (local.get $xp)))
          (local.set $s1 (v128.load32_splat (i32.add (local.get $xp) (local.get $dq))))
          (local.set $d (v128.load offset=0 (local.get $dy)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s0) (local.get $d))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (local.get $s1) (local.get $d))))
          (local.set $d (v128.load offset=16 (local.get $dy)))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s0) (local.get $d))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (local.get $s1) (local.get $d))))
          (local.set $d (v128.load offset=32 (local.get $dy)))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s0) (local.get $d))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (local.get $s1) (local.get $d))))
          (local.set $d (v128.load offset=48 (local.get $dy)))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s0) (local.get $d))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (local.get $s1) (local.get $d))))
          (local.set $dy (i32.add (local.get $dy) (local.get $cb)))
          (local.set $xp (i32.add (local.get $xp) (i32.const 4)))
          (br_if $pixels (i32.lt_u (local.get $xp) (local.get $end))))
        (local.set $xp (i32.add (local.get $xp) (local.get $rowSkip)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br_if $rows (i32.lt_u (local.get $y) (local.get $h))))
      (local.set $xp (i32.add (local.get $xp) (local.get $imgSkip)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $images (i32.lt_u (local.get $n) (local.get $nb))))
    (v128.store offset=0 (local.get $dw1) (local.get $b0))
    (v128.store offset=16 (local.get $dw1) (local.get $b1))
    (v128.store offset=32 (local.get $dw1) (local.get $b2))
    (v128.store offset=48 (local.get $dw1) (local.get $b3))
    (v128.store offset=0 (local.get $dw0) (local.get $a0))
    (v128.store offset=16 (local.get $dw0) (local.get $a1))
    (v128.store offset=32 (local.get $dw0) (local.get $a2))
    (v128.store offset=48 (local.get $dw0) (local.get $a3)))

  ;; Column sums of a row-major [m, cols] float32 matrix, cols a multiple of 4: out[j] = Σ_r x[r, j].
  ;; Blocks of 32 rows are summed in f32x4 (fast), each block's sum is added into f64x2 totals, so the
  ;; rounding error stays that of a 32-term float32 sum per block (the float64 total adds none to speak of).
  ;; Sixteen columns per pass (4 f32x4 block sums + 8 f64x2 totals), then four at a time for the rest.
  ;;   $x, $out  byte addresses;  $m  rows (≥ 1);  $cols  columns (a multiple of 4)
  (func (export "sumRows")
    (param $x i32) (param $out i32) (param $m i32) (param $cols i32)
    (local $rb i32) (local $col i32) (local $p i32) (local $r i32) (local $blockEnd i32) (local $v v128)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local $t4 v128) (local $t5 v128) (local $t6 v128) (local $t7 v128)
    (local.set $rb (i32.shl (local.get $cols) (i32.const 2)))                     ;; one row, bytes
    ;; 16 columns at a time
    (block $done16
      (loop $groups16
        (br_if $done16 (i32.gt_u (i32.add (local.get $col) (i32.const 64)) (local.get $rb)))
        (local.set $t0 (v128.const i64x2 0 0)) (local.set $t1 (v128.const i64x2 0 0))
        (local.set $t2 (v128.const i64x2 0 0)) (local.set $t3 (v128.const i64x2 0 0))
        (local.set $t4 (v128.const i64x2 0 0)) (local.set $t5 (v128.const i64x2 0 0))
        (local.set $t6 (v128.const i64x2 0 0)) (local.set $t7 (v128.const i64x2 0 0))
        (local.set $p (i32.add (local.get $x) (local.get $col)))
        (local.set $r (i32.const 0))
        (loop $blocks
          (local.set $blockEnd (i32.add (local.get $r) (i32.const 32)))
          (if (i32.gt_u (local.get $blockEnd) (local.get $m)) (then (local.set $blockEnd (local.get $m))))
          (local.set $s0 (v128.load offset=0 (local.get $p)))
          (local.set $s1 (v128.load offset=16 (local.get $p)))
          (local.set $s2 (v128.load offset=32 (local.get $p)))
          (local.set $s3 (v128.load offset=48 (local.get $p)))
          (local.set $p (i32.add (local.get $p) (local.get $rb)))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (block $blockDone
            (loop $rows
              (br_if $blockDone (i32.ge_u (local.get $r) (local.get $blockEnd)))
              (local.set $s0 (f32x4.add (local.get $s0) (v128.load offset=0 (local.get $p))))
              (local.set $s1 (f32x4.add (local.get $s1) (v128.load offset=16 (local.get $p))))
              (local.set $s2 (f32x4.add (local.get $s2) (v128.load offset=32 (local.get $p))))
              (local.set $s3 (f32x4.add (local.get $s3) (v128.load offset=48 (local.get $p))))
              (local.set $p (i32.add (local.get $p) (local.get $rb)))
              (local.set $r (i32.add (local.get $r) (i32.const 1)))
              (br $rows)))
          (local.set $t0 (f64x2.add (local.get $t0) (f64x2.promote_low_f32x4 (local.get $s0))))
          (local.set $t1 (f64x2.add (local.get $t1) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $s0) (local.get $s0)))))
          (local.set $t2 (f64x2.add (local.get $t2) (f64x2.promote_low_f32x4 (local.get $s1))))
          (local.set $t3 (f64x2.add (local.get $t3) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $s1) (local.get $s1)))))
          (local.set $t4 (f64x2.add (local.get $t4) (f64x2.promote_low_f32x4 (local.get $s2))))
          (local.set $t5 (f64x2.add (local.get $t5) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $s2) (local.get $s2)))))
          (local.set $t6 (f64x2.add (local.get $t6) (f64x2.promote_low_f32x4 (local.get $s3))))
          (local.set $t7 (f64x2.add (local.get $t7) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $s3) (local.get $s3)))))
          (br_if $blocks (i32.lt_u (local.get $r) (local.get $m))))
        (local.set $p (i32.add (local.get $out) (local.get $col)))
        (v128.store offset=0 (local.get $p) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (local.get $t0)) (f32x4.demote_f64x2_zero (local.get $t1))))
        (v128.store offset=16 (local.get $p) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (local.get $t2)) (f32x4.demote_f64x2_zero (local.get $t3))))
        (v128.store offset=32 (local.get $p) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (local.get $t4)) (f32x4.demote_f64x2_zero (local.get $t5))))
        (v128.store offset=48 (local.get $p) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (local.get $t6)) (f32x4.demote_f64x2_zero (local.get $t7))))
        (local.set $col (i32.add (local.get $col) (i32.const 64)))
        (br $groups16)))
    ;; the remaining columns, 4 at a time
    (block $done4
      (loop $groups4
        (br_if $done4 (i32.ge_u (local.get $col) (local.get $rb)))
        (local.set $t0 (v128.const i64x2 0 0)) (local.set $t1 (v128.const i64x2 0 0))
        (local.set $p (i32.add (local.get $x) (local.get $col)))
        (local.set $r (i32.const 0))
        (loop $blocks
          (local.set $blockEnd (i32.add (local.get $r) (i32.const 32)))
          (if (i32.gt_u (local.get $blockEnd) (local.get $m)) (then (local.set $blockEnd (local.get $m))))
          (local.set $s0 (v128.load (local.get $p)))
          (local.set $p (i32.add (local.get $p) (local.get $rb)))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (block $blockDone
            (loop $rows
              (br_if $blockDone (i32.ge_u (local.get $r) (local.get $blockEnd)))
              (local.set $s0 (f32x4.add (local.get $s0) (v128.load (local.get $p))))
              (local.set $p (i32.add (local.get $p) (local.get $rb)))
              (local.set $r (i32.add (local.get $r) (i32.const 1)))
              (br $rows)))
          (local.set $t0 (f64x2.add (local.get $t0) (f64x2.promote_low_f32x4 (local.get $s0))))
          (local.set $t1 (f64x2.add (local.get $t1) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $s0) (local.get $s0)))))
          (br_if $blocks (i32.lt_u (local.get $r) (local.get $m))))
        (v128.store (i32.add (local.get $out) (local.get $col)) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (local.get $t0)) (f32x4.demote_f64x2_zero (local.get $t1))))
        (local.set $col (i32.add (local.get $col) (i32.const 16)))
        (br $groups4))))

  ;; out = a + b broadcast along the rows: a and out [rows, c], b [c], c a multiple of 4 (a bias add).
  ;;   $a, $b, $out  byte addresses;  $rows  rows (≥ 1);  $cb  bytes per row (4·c, ≥ 16)
  (func (export "addRows")
    (param $a i32) (param $b i32) (param $out i32) (param $rows i32) (param $cb i32)
    (local $j i32) (local $end i32)
    (local.set $end (i32.add (local.get $a) (i32.mul (local.get $rows) (local.get $cb))))
    (loop $rows
      (local.set $j (i32.const 0))
      (loop $cols
        (v128.store (i32.add (local.get $out) (local.get $j))
          (f32x4.add (v128.load (i32.add (local.get $a) (local.get $j))) (v128.load (i32.add (local.get $b) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $cols (i32.lt_u (local.get $j) (local.get $cb))))
      (local.set $a (i32.add (local.get $a) (local.get $cb)))
      (local.set $out (i32.add (local.get $out) (local.get $cb)))
      (br_if $rows (i32.lt_u (local.get $a) (local.get $end)))))
)

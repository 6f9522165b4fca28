;; Adam's update step in wasm SIMD (see src/train/flat.ts, SimdAdam), run by every training worker on its
;; shard and by the in-thread step on all the weights. It has its own memory, which holds the Adam moments
;; for the whole run and, each step, the weights and the workers' gradients copied in. Built into update-module.ts by `npm run build:wasm`.
(module
  (memory (export "memory") 1)

  ;; Adam over n values (n a multiple of 4; callers pad with zeros, which stay zero), the gradient being
  ;; the weighted sum of two workers' gradients, g = w0·g0 + w1·g1:
  ;;   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  θ ← θ − α·(m/c1) / (√(v/c2) + ε)
  ;; with c1 = 1−β1^t, c2 = 1−β2^t: in float32, operation for operation as Algorithm 1 writes it (1−β too
  ;; is rounded to float32). All byte addresses.
  (func (export "adam")
    (param $theta i32) (param $g0 i32) (param $g1 i32) (param $w0 f32) (param $w1 f32)
    (param $m i32) (param $v i32) (param $n i32)
    (param $beta1 f32) (param $beta2 f32) (param $lr f32) (param $c1 f32) (param $c2 f32) (param $eps f32)
    (local $i i32) (local $end i32)
    (local $vw0 v128) (local $vw1 v128) (local $vb1 v128) (local $vb2 v128) (local $vo1 v128) (local $vo2 v128)
    (local $vlr v128) (local $vc1 v128) (local $vc2 v128) (local $veps v128)
    (local $g v128) (local $mi v128) (local $vi v128)
    (local.set $vw0 (f32x4.splat (local.get $w0)))
    (local.set $vw1 (f32x4.splat (local.get $w1)))
    (local.set $vb1 (f32x4.splat (local.get $beta1)))
    (local.set $vb2 (f32x4.splat (local.get $beta2)))
    (local.set $vo1 (f32x4.splat (f32.sub (f32.const 1) (local.get $beta1))))
    (local.set $vo2 (f32x4.splat (f32.sub (f32.const 1) (local.get $beta2))))
    (local.set $vlr (f32x4.splat (local.get $lr)))
    (local.set $vc1 (f32x4.splat (local.get $c1)))
    (local.set $vc2 (f32x4.splat (local.get $c2)))
    (local.set $veps (f32x4.splat (local.get $eps)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (if (i32.eqz (local.get $n)) (then (return)))
    (loop $values
      (local.set $g (f32x4.add
        (f32x4.mul (local.get $vw0) (v128.load (i32.add (local.get $g0) (local.get $i))))
        (f32x4.mul (local.get $vw1) (v128.load (i32.add (local.get $g1) (local.get $i))))))
      (local.set $mi (f32x4.add
        (f32x4.mul (local.get $vb1) (v128.load (i32.add (local.get $m) (local.get $i))))
        (f32x4.mul (local.get $g) (local.get $vo1))))
      (local.set $vi (f32x4.add
        (f32x4.mul (local.get $vb2) (v128.load (i32.add (local.get $v) (local.get $i))))
        (f32x4.mul (f32x4.mul (local.get $g) (local.get $g)) (local.get $vo2))))
      (v128.store (i32.add (local.get $m) (local.get $i)) (local.get $mi))
      (v128.store (i32.add (local.get $v) (local.get $i)) (local.get $vi))
      (v128.store (i32.add (local.get $theta) (local.get $i))
        (f32x4.sub
          (v128.load (i32.add (local.get $theta) (local.get $i)))
          (f32x4.mul (local.get $vlr)
            (f32x4.div
              (f32x4.div (local.get $mi) (local.get $vc1))
              (f32x4.add (f32x4.sqrt (f32x4.div (local.get $vi) (local.get $vc2))) (local.get $veps))))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br_if $values (i32.lt_u (local.get $i) (local.get $end)))))
)

;; The inline build's decoder (js/wasm-source-inline.js): the .wasm's bytes travel as a
;; Latin-1 string; TextEncoder writes it into this module's memory as UTF-8, where a
;; byte under 0x80 is itself and any other is two (110000xx 10xxxxxx). f(n) folds the n
;; bytes of UTF-8 back into the bytes, in place, and returns how many there are.
;; .ci/inline-wasm.mjs assembles it with binaryen's wasm-as at build time.
(module
  (memory (export "m") 0)
  (func (export "f") (param $n i32) (result i32) (local $i i32) (local $o i32) (local $b i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $b (i32.load8_u (local.get $i)))
        (if (i32.ge_u (local.get $b) (i32.const 128))
          (then
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (local.set $b (i32.or (i32.shl (i32.and (local.get $b) (i32.const 31)) (i32.const 6))
                                  (i32.and (i32.load8_u (local.get $i)) (i32.const 63))))))
        (i32.store8 (local.get $o) (local.get $b))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $o)))

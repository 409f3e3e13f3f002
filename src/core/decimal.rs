//! Exact decimal arithmetic for monetary values (`Price * Quantity`).
//!
//! Values arrive as JSON number text. Multiplying them as decimals keeps `19.99 * 3`
//! equal to `59.97` (not `59.970000000000006`) and keeps float formatting out of the wasm.

use super::text;

/// `mant / 10^scale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    mant: i64,
    scale: u32,
}

/// More fractional digits than any currency uses; beyond this we refuse rather than round.
const MAX_SCALE: u32 = 12;

impl Decimal {
    /// Parses JSON number text. `None` when it does not fit exactly.
    pub fn parse(text: &str) -> Option<Decimal> {
        let (neg, body) = match text.strip_prefix("-") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (digits, exp) = match body.bytes().position(|b| matches!(b, b'e' | b'E')) {
            Some(i) => (
                &body[..i],
                i32::try_from(text::parse_i64(&body[i + 1..])?).ok()?,
            ),
            None => (body, 0),
        };
        let (int, frac) = text::cut(digits, b'.').unwrap_or((digits, ""));
        if int.is_empty() {
            return None;
        }
        let mut mant: i64 = 0;
        for c in int.bytes().chain(frac.bytes()) {
            if !c.is_ascii_digit() {
                return None;
            }
            // `mant * 10 + d` fits exactly when `mant <= (MAX - d) / 10`: the same
            // test as checked arithmetic, without its 128-bit multiply on wasm32.
            let d = i64::from(c - b'0');
            if mant > (i64::MAX - d) / 10 {
                return None;
            }
            mant = mant * 10 + d;
        }
        if mant == 0 {
            // Zero is exact whatever the exponent (`0e-2147483647`).
            return Some(Decimal { mant: 0, scale: 0 });
        }
        // i64: `frac.len() - exp` cannot overflow even for exp = i32::MIN.
        let scale = frac.len() as i64 - i64::from(exp);
        if scale < 0 {
            // Times 10, -scale times: an i64 holds 10^18 at most, so a larger
            // exponent fails at once instead of looping once per unit. Each step
            // fails exactly where `mant * 10^-scale` would overflow.
            let shift = u32::try_from(-scale).ok().filter(|s| *s <= 18)?;
            for _ in 0..shift {
                if mant > i64::MAX / 10 {
                    return None;
                }
                mant *= 10;
            }
        }
        let mut d = Decimal {
            mant: if neg { -mant } else { mant },
            scale: u32::try_from(scale.max(0)).ok()?,
        };
        // Trailing zeros of a long fraction (`1.000…0e-5`) may still leave it exact.
        if d.scale > MAX_SCALE + 19 {
            return None;
        }
        d.trim();
        (d.scale <= MAX_SCALE).then_some(d)
    }

    pub fn times(self, other: Decimal) -> Option<Decimal> {
        let mut d = Decimal {
            mant: mul_exact(self.mant, other.mant)?,
            scale: self.scale + other.scale,
        };
        d.trim();
        (d.scale <= MAX_SCALE).then_some(d)
    }

    pub fn is_zero(self) -> bool {
        self.mant == 0
    }

    fn trim(&mut self) {
        while self.scale > 0 && self.mant % 10 == 0 {
            self.mant /= 10;
            self.scale -= 1;
        }
    }

    /// JSON number text, shortest exact form.
    pub fn to_text(self) -> String {
        let mut digits = Vec::new();
        let mut m = self.mant.unsigned_abs();
        while m > 0 || digits.len() <= self.scale as usize {
            digits.push(b'0' + (m % 10) as u8);
            m /= 10;
        }
        let mut out = String::new();
        if self.mant < 0 {
            out.push('-');
        }
        for (i, d) in digits.iter().rev().enumerate() {
            if i == digits.len() - self.scale as usize {
                out.push('.');
            }
            out.push(*d as char);
        }
        out
    }
}

/// `a * b` when it fits an i64: `i64::checked_mul`, from 32-bit halves (a plain
/// 64-bit multiply per half), not the 128-bit multiply it takes on wasm32.
fn mul_exact(a: i64, b: i64) -> Option<i64> {
    let (x, y) = (a.unsigned_abs(), b.unsigned_abs());
    let (xh, xl, yh, yl) = (x >> 32, x & 0xffff_ffff, y >> 32, y & 0xffff_ffff);
    if xh != 0 && yh != 0 {
        return None;
    }
    // One of the two cross products is zero, so the sum is below 2^64.
    let cross = xh * yl + xl * yh;
    if cross >> 32 != 0 {
        return None;
    }
    let m = (cross << 32).checked_add(xl * yl)?;
    // The magnitude of a negative product may be one more than i64::MAX.
    let neg = (a < 0) != (b < 0);
    if m > i64::MAX as u64 + u64::from(neg) {
        return None;
    }
    Some(if neg {
        (m as i64).wrapping_neg()
    } else {
        m as i64
    })
}

#[cfg(test)]
#[path = "decimal_tests.rs"]
mod tests;

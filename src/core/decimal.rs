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
            mant = mant.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
        }
        if mant == 0 {
            // Zero is exact whatever the exponent (`0e-2147483647`).
            return Some(Decimal { mant: 0, scale: 0 });
        }
        // i64: `frac.len() - exp` cannot overflow even for exp = i32::MIN.
        let scale = frac.len() as i64 - i64::from(exp);
        if scale < 0 {
            // One multiplication by 10^-scale: an i64 holds 10^18 at most, so a larger
            // exponent fails at once instead of looping once per unit.
            let shift = u32::try_from(-scale).ok().filter(|s| *s <= 18)?;
            mant = mant.checked_mul(10i64.pow(shift))?;
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
            mant: self.mant.checked_mul(other.mant)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn multiplies_prices_exactly() {
        assert_eq!(d("19.99").times(d("3")).unwrap().to_text(), "59.97");
        assert_eq!(d("0.1").times(d("3")).unwrap().to_text(), "0.3");
        assert_eq!(d("2.50").times(d("2")).unwrap().to_text(), "5");
        assert_eq!(d("-1.5").times(d("2")).unwrap().to_text(), "-3");
        assert_eq!(d("0.05").times(d("0.5")).unwrap().to_text(), "0.025");
    }

    #[test]
    fn understands_exponents() {
        assert_eq!(d("1.5e2").to_text(), "150");
        assert_eq!(d("15E-3").to_text(), "0.015");
        assert_eq!(d("0").to_text(), "0");
    }

    #[test]
    fn refuses_what_it_cannot_hold_exactly() {
        assert_eq!(Decimal::parse("1e30"), None);
        assert_eq!(Decimal::parse("1e-20"), None);
        assert_eq!(Decimal::parse("x"), None);
        assert_eq!(d("9999999999").times(d("9999999999")), None);
    }

    #[test]
    fn extreme_exponents_are_refused_at_once() {
        // These used to loop once per unit of exponent (seconds natively) or overflow.
        for text in [
            "0e-2147483647",
            "0e2147483647",
            "1e-2147483648",
            "1e2147483647",
            "0.5e-2147483648",
            "1e99999999999",
        ] {
            let t0 = std::time::Instant::now();
            let _ = Decimal::parse(text);
            assert!(
                t0.elapsed().as_millis() < 50,
                "{text} took {:?}",
                t0.elapsed()
            );
        }
        assert_eq!(d("0e2147483647").to_text(), "0");
        assert!(d("0e-2147483647").is_zero());
        assert_eq!(Decimal::parse("1e-2147483648"), None);
        assert_eq!(d("1e18").to_text(), "1000000000000000000");
        assert_eq!(Decimal::parse("1e19"), None);
    }
}

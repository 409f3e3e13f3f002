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
        let (neg, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (digits, exp) = match body.find(['e', 'E']) {
            Some(i) => (
                &body[..i],
                i32::try_from(text::parse_i64(&body[i + 1..])?).ok()?,
            ),
            None => (body, 0),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
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
        let mut scale = frac.len() as i32 - exp;
        while scale < 0 {
            mant = mant.checked_mul(10)?;
            scale += 1;
        }
        let mut d = Decimal {
            mant: if neg { -mant } else { mant },
            scale: scale as u32,
        };
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
}

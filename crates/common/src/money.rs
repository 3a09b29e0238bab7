//! Money as integer cents: JSON requests and responses carry decimal amounts (`19.99`),
//! everything stored or sent as an event carries cents (`1999`).

use serde_json::Value;

/// The largest price a ticket may have, in whole currency units.
pub const MAX_PRICE: i64 = 1_000_000;

/// A positive amount of money in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cents(i64);

pub const INVALID_PRICE: &str =
    "Price must be a number greater than 0 and at most 1000000, with at most 2 decimals";

/// The smallest amount a card can be charged (Stripe's minimum for USD, and about that
/// of most currencies), in cents: a ticket cheaper than this could never be paid.
pub const MIN_CHARGE_CENTS: i64 = 50;

pub const BELOW_MINIMUM_CHARGE: &str =
    "Price must be at least 0.50, the smallest amount a card can be charged";

impl Cents {
    /// A ticket price: [`Cents::from_json`], and at least [`MIN_CHARGE_CENTS`].
    pub fn price_from_json(value: &Value) -> Result<Self, &'static str> {
        let cents = Self::from_json(value)?;
        if cents.0 < MIN_CHARGE_CENTS {
            return Err(BELOW_MINIMUM_CHARGE);
        }
        Ok(cents)
    }

    pub fn new(cents: i64) -> Option<Self> {
        (cents > 0 && cents <= MAX_PRICE * 100).then_some(Self(cents))
    }

    /// Parses a JSON number of currency units with at most two decimals.
    pub fn from_json(value: &Value) -> Result<Self, &'static str> {
        let units = value.as_f64().ok_or(INVALID_PRICE)?;
        let scaled = units * 100.0;
        let cents = scaled.round();
        // 19.99 * 100 is 1998.9999999999998: tolerate float noise, not a third decimal.
        if !cents.is_finite() || (scaled - cents).abs() > 1e-6 {
            return Err(INVALID_PRICE);
        }
        Self::new(cents as i64).ok_or(INVALID_PRICE)
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// The amount in currency units, e.g. `19.99`.
    pub fn units(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// The amount as a JSON number of currency units, e.g. `19.99`.
    pub fn to_json(self) -> Value {
        serde_json::Number::from_f64(self.0 as f64 / 100.0)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn decimal_prices_become_exact_cents() {
        for (price, cents) in [
            (json!(19.99), 1999),
            (json!(0.01), 1),
            (json!(20), 2000),
            (json!(1000000), 100_000_000),
        ] {
            assert_eq!(Cents::from_json(&price).unwrap().get(), cents, "{price}");
        }
    }

    #[test]
    fn invalid_prices_are_rejected() {
        for price in [
            json!(0),
            json!(-5),
            json!(0.001),
            json!(10.005),
            json!(1000000.01),
            json!("10"),
            json!(null),
            json!(1e300),
        ] {
            assert!(Cents::from_json(&price).is_err(), "{price}");
        }
    }

    #[test]
    fn prices_below_the_minimum_charge_are_rejected_with_their_reason() {
        assert_eq!(Cents::price_from_json(&json!(0.5)).unwrap().get(), 50);
        assert_eq!(
            Cents::price_from_json(&json!(0.49)),
            Err(BELOW_MINIMUM_CHARGE)
        );
        assert_eq!(
            Cents::price_from_json(&json!(0.01)),
            Err(BELOW_MINIMUM_CHARGE)
        );
        assert_eq!(Cents::price_from_json(&json!(0)), Err(INVALID_PRICE));
    }

    #[test]
    fn cents_render_as_decimal_units() {
        assert_eq!(Cents::new(1999).unwrap().to_json(), json!(19.99));
        assert_eq!(Cents::new(2000).unwrap().to_json(), json!(20.0));
    }
}

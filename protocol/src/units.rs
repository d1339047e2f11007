//! Fixed-point units of the wire format and the checked conversions from SI values.
//!
//! Every conversion from `f64` refuses non-finite input and values that do not fit, with a
//! [`ValidationError`] that names the field: an agent never sends a silently clamped value.

use crate::validate::ValidationError;
use std::f64::consts::TAU;

/// A position standard deviation on a logarithmic 4-bit scale: `0.05 m * 2^(code / 2)`, so
/// code 0 is 5 cm, 2 is 10 cm, 8 is 80 cm and 15 (the largest) is about 9 m.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sigma(u8);

impl Sigma {
    pub const MAX_CODE: u8 = 15;

    pub fn from_code(code: u8) -> Option<Self> {
        (code <= Self::MAX_CODE).then_some(Self(code))
    }

    /// The smallest code whose value is at least `sigma_m`: rounding never understates the
    /// uncertainty. Values above the largest code are refused.
    pub fn from_m(field: &'static str, sigma_m: f64) -> Result<Self, ValidationError> {
        let sigma_m = finite(field, sigma_m)?;
        if sigma_m < 0.0 {
            return Err(ValidationError::out_of_range(field, sigma_m));
        }
        let code = (2.0 * (sigma_m / 0.05).log2()).ceil().max(0.0);
        // A tiny tolerance so that exact code values map to themselves despite rounding.
        let code = if code > 0.0 && Self(code as u8 - 1).m() >= sigma_m - 1e-9 {
            code - 1.0
        } else {
            code
        };
        if code > Self::MAX_CODE as f64 {
            return Err(ValidationError::out_of_range(field, sigma_m));
        }
        Ok(Self(code as u8))
    }

    pub fn code(self) -> u8 {
        self.0
    }

    pub fn m(self) -> f64 {
        0.05 * 2f64.powf(self.0 as f64 / 2.0)
    }
}

/// Detection confidence in fifteenths: code 0 is 0, code 15 is 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Confidence(u8);

impl Confidence {
    pub const MAX_CODE: u8 = 15;

    pub fn from_code(code: u8) -> Option<Self> {
        (code <= Self::MAX_CODE).then_some(Self(code))
    }

    pub fn from_fraction(field: &'static str, p: f64) -> Result<Self, ValidationError> {
        let p = finite(field, p)?;
        if !(0.0..=1.0).contains(&p) {
            return Err(ValidationError::out_of_range(field, p));
        }
        Ok(Self((p * 15.0).round() as u8))
    }

    pub fn code(self) -> u8 {
        self.0
    }

    pub fn fraction(self) -> f64 {
        self.0 as f64 / 15.0
    }
}

pub(crate) fn finite(field: &'static str, v: f64) -> Result<f64, ValidationError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(ValidationError::NotFinite { field })
    }
}

/// `v * scale` rounded to the nearest integer, refused if it does not fit in `T`.
pub(crate) fn fixed<T: TryFrom<i64>>(
    field: &'static str,
    v: f64,
    scale: f64,
) -> Result<T, ValidationError> {
    let scaled = (finite(field, v)? * scale).round();
    if scaled.abs() > i64::MAX as f64 / 2.0 {
        return Err(ValidationError::out_of_range(field, v));
    }
    T::try_from(scaled as i64).map_err(|_| ValidationError::out_of_range(field, v))
}

/// An angle in radians, counter-clockwise from East, as 1/256 turns in `0..256`.
pub fn yaw_to_u8(field: &'static str, yaw_rad: f64) -> Result<u8, ValidationError> {
    let turns = finite(field, yaw_rad)? / TAU;
    Ok(((turns.rem_euclid(1.0) * 256.0).round() as u32 % 256) as u8)
}

pub fn yaw_from_u8(code: u8) -> f64 {
    code as f64 * TAU / 256.0
}

/// An angle in radians, counter-clockwise from East, as tenths of a degree in `0..3600`.
pub fn yaw_to_ddeg(field: &'static str, yaw_rad: f64) -> Result<u16, ValidationError> {
    let deg = finite(field, yaw_rad)?.to_degrees().rem_euclid(360.0);
    Ok(((deg * 10.0).round() as u32 % 3600) as u16)
}

pub fn yaw_from_ddeg(ddeg: u16) -> f64 {
    (ddeg as f64 / 10.0).to_radians()
}

/// The course of a velocity in cm/s as a 1/256-turn code; `None` for a standing object.
///
/// Senders leave an object's yaw out of the wire when it equals this value, and receivers put
/// it back from the same function, so moving objects need no yaw byte.
pub fn course_u8(velocity_cms: [i16; 2]) -> Option<u8> {
    if velocity_cms == [0, 0] {
        return None;
    }
    let yaw = (velocity_cms[1] as f64).atan2(velocity_cms[0] as f64);
    Some(yaw_to_u8("course", yaw).expect("atan2 of integers is finite"))
}

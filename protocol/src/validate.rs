//! From a decoded [`FeatureFrame`] to a [`ValidatedFrame`]: physical ranges and the timestamp
//! window. Code that takes a `ValidatedFrame` never re-checks these.

use crate::frame::{FeatureFrame, MAX_OBJECTS};
use std::collections::HashSet;

/// Why a frame (or a value on its way into one) was refused. `field` names the bad field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    #[error("{field} is not a finite number")]
    NotFinite { field: &'static str },
    #[error("{field} = {value} is outside its physical range")]
    OutOfRange { field: &'static str, value: f64 },
    #[error("object id {id} appears twice in one frame")]
    DuplicateObjectId { id: u16 },
    #[error("{count} objects exceed the maximum of {max}")]
    TooManyObjects { count: usize, max: usize },
    #[error("frame captured {age_us} µs ago is older than the limit of {max_age_us} µs")]
    TooOld { age_us: i64, max_age_us: i64 },
    #[error("frame captured {ahead_us} µs in the future, beyond the allowed {allowed_us} µs")]
    FromFuture { ahead_us: i64, allowed_us: i64 },
}

impl ValidationError {
    pub(crate) fn out_of_range(field: &'static str, value: f64) -> Self {
        Self::OutOfRange { field, value }
    }

    /// A short stable name, used as a label when rejected frames are counted by reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFinite { .. } => "not_finite",
            Self::OutOfRange { .. } => "out_of_range",
            Self::DuplicateObjectId { .. } => "duplicate_object_id",
            Self::TooManyObjects { .. } => "too_many_objects",
            Self::TooOld { .. } => "too_old",
            Self::FromFuture { .. } => "from_future",
        }
    }
}

/// The acceptance window for capture times, relative to the receiver's `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameWindow {
    /// Frames captured longer ago than this are refused. Default 300 ms.
    pub max_age_us: i64,
    /// Frames may be stamped this far ahead of `now`, plus the sender's stated clock
    /// uncertainty. Default 20 ms.
    pub future_tolerance_us: i64,
    /// Senders claiming a worse clock than this are refused. Default 100 ms.
    pub max_clock_uncertainty_us: u32,
}

impl Default for FrameWindow {
    fn default() -> Self {
        Self {
            max_age_us: 300_000,
            future_tolerance_us: 20_000,
            max_clock_uncertainty_us: 100_000,
        }
    }
}

/// Physical limits of the checks. Generous on purpose: they catch corrupt or hostile values,
/// not unusual driving.
pub const MAX_SPEED_CMS: i32 = 100 * 100;
pub const MAX_OBJECT_RANGE_CM: i32 = 500 * 100;
pub const MAX_ACCEL_CMS2: i16 = 30 * 100;
pub const MAX_YAW_RATE_MRADS: i16 = 6_000;
pub const MAX_WIDTH_DM: u8 = 60;

/// A frame that passed every check; the only kind of frame the edge's pipeline accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedFrame(FeatureFrame);

impl ValidatedFrame {
    pub fn new(
        frame: FeatureFrame,
        now_us: i64,
        window: &FrameWindow,
    ) -> Result<Self, ValidationError> {
        check_content(&frame)?;
        if frame.clock_uncertainty_us > window.max_clock_uncertainty_us {
            return Err(ValidationError::out_of_range(
                "clock_uncertainty_us",
                frame.clock_uncertainty_us as f64,
            ));
        }
        let age_us = now_us.saturating_sub(frame.capture_us);
        if age_us > window.max_age_us {
            return Err(ValidationError::TooOld {
                age_us,
                max_age_us: window.max_age_us,
            });
        }
        let ahead_us = frame.capture_us.saturating_sub(now_us);
        let allowed_us = window.future_tolerance_us + frame.clock_uncertainty_us as i64;
        if ahead_us > allowed_us {
            return Err(ValidationError::FromFuture {
                ahead_us,
                allowed_us,
            });
        }
        Ok(Self(frame))
    }

    pub fn frame(&self) -> &FeatureFrame {
        &self.0
    }

    pub fn into_inner(self) -> FeatureFrame {
        self.0
    }
}

/// The checks that do not depend on time; an agent runs them before sending.
pub fn check_content(frame: &FeatureFrame) -> Result<(), ValidationError> {
    let ego = &frame.ego;
    if !ego.position.is_valid() {
        return Err(ValidationError::out_of_range(
            "ego.position",
            ego.position.lat_deg(),
        ));
    }
    if ego.speed_cms as i32 > MAX_SPEED_CMS {
        return Err(ValidationError::out_of_range("ego.speed", ego.speed_mps()));
    }
    if ego.yaw_ddeg >= 3600 {
        return Err(ValidationError::out_of_range(
            "ego.yaw",
            ego.yaw_ddeg as f64 / 10.0,
        ));
    }
    if ego.yaw_rate_mrads.unsigned_abs() > MAX_YAW_RATE_MRADS as u16 {
        return Err(ValidationError::out_of_range(
            "ego.yaw_rate",
            ego.yaw_rate_radps(),
        ));
    }
    if ego.accel_cms2.unsigned_abs() > MAX_ACCEL_CMS2 as u16 {
        return Err(ValidationError::out_of_range("ego.accel", ego.accel_mps2()));
    }
    check_size("ego.footprint", ego.length_dm, ego.width_dm)?;
    if frame.objects.len() > MAX_OBJECTS {
        return Err(ValidationError::TooManyObjects {
            count: frame.objects.len(),
            max: MAX_OBJECTS,
        });
    }
    let mut ids = HashSet::with_capacity(frame.objects.len());
    for o in &frame.objects {
        if !ids.insert(o.id) {
            return Err(ValidationError::DuplicateObjectId { id: o.id });
        }
        if o.offset_cm.iter().any(|c| c.abs() > MAX_OBJECT_RANGE_CM) {
            return Err(ValidationError::out_of_range(
                "object.offset",
                o.offset_m()[0].abs().max(o.offset_m()[1].abs()),
            ));
        }
        let speed_cms = (o.velocity_cms[0] as f64).hypot(o.velocity_cms[1] as f64);
        if speed_cms > MAX_SPEED_CMS as f64 {
            return Err(ValidationError::out_of_range(
                "object.velocity",
                speed_cms / 100.0,
            ));
        }
        check_size("object.footprint", o.length_dm, o.width_dm)?;
    }
    Ok(())
}

fn check_size(field: &'static str, length_dm: u8, width_dm: u8) -> Result<(), ValidationError> {
    if length_dm == 0 || width_dm == 0 || width_dm > MAX_WIDTH_DM {
        return Err(ValidationError::out_of_range(
            field,
            length_dm.min(width_dm) as f64 / 10.0,
        ));
    }
    Ok(())
}

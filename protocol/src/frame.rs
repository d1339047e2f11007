//! `FeatureFrame`: what a vehicle tells its edge ten times a second.

use crate::codec::{EncodeError, Message, MessageKind};
use crate::units::{self, course_u8, yaw_from_ddeg, yaw_from_u8, Confidence, Sigma};
use crate::validate::ValidationError;
use crate::{GeoPoint, VehicleId};
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most objects one frame may carry.
pub const MAX_OBJECTS: usize = 255;

/// One frame of a vehicle's perception and its own state, stamped in the edge's time base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureFrame {
    pub vehicle: VehicleId,
    /// Per-vehicle counter, +1 per frame sent, wrapping.
    pub seq: u32,
    /// When the perception was captured, in microseconds of the edge's clock (UTC).
    pub capture_us: i64,
    /// The sender's estimate of its clock error against the edge, in microseconds.
    pub clock_uncertainty_us: u32,
    pub ego: EgoState,
    pub objects: Vec<PerceivedObject>,
}

impl Message for FeatureFrame {
    const KIND: MessageKind = MessageKind::FeatureFrame;

    fn check_encodable(&self) -> Result<(), EncodeError> {
        if self.objects.len() > MAX_OBJECTS {
            return Err(EncodeError::TooMany {
                what: "objects in a frame",
                count: self.objects.len(),
                max: MAX_OBJECTS,
            });
        }
        Ok(())
    }
}

/// The sender's own state. Yaw is counter-clockwise from East in the sender's ENU frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgoState {
    pub position: GeoPoint,
    pub speed_cms: u16,
    /// Tenths of a degree, counter-clockwise from East, `0..3600`.
    pub yaw_ddeg: u16,
    pub yaw_rate_mrads: i16,
    pub accel_cms2: i16,
    pub length_dm: u8,
    pub width_dm: u8,
    /// One standard deviation of the horizontal position, centimetres.
    pub position_sigma_cm: u16,
}

impl EgoState {
    pub fn speed_mps(&self) -> f64 {
        self.speed_cms as f64 / 100.0
    }
    pub fn yaw_rad(&self) -> f64 {
        yaw_from_ddeg(self.yaw_ddeg)
    }
    pub fn yaw_rate_radps(&self) -> f64 {
        self.yaw_rate_mrads as f64 / 1000.0
    }
    pub fn accel_mps2(&self) -> f64 {
        self.accel_cms2 as f64 / 100.0
    }
    pub fn length_m(&self) -> f64 {
        self.length_dm as f64 / 10.0
    }
    pub fn width_m(&self) -> f64 {
        self.width_dm as f64 / 10.0
    }
    pub fn position_sigma_m(&self) -> f64 {
        self.position_sigma_cm as f64 / 100.0
    }
    /// Velocity over ground in the sender's ENU frame, m/s.
    pub fn velocity_mps(&self) -> [f64; 2] {
        let (s, c) = self.yaw_rad().sin_cos();
        [self.speed_mps() * c, self.speed_mps() * s]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectClass {
    Unknown = 0,
    Car = 1,
    Truck = 2,
    Bus = 3,
    Motorcycle = 4,
    Bicycle = 5,
    Pedestrian = 6,
}

impl ObjectClass {
    pub const ALL: [ObjectClass; 7] = [
        Self::Unknown,
        Self::Car,
        Self::Truck,
        Self::Bus,
        Self::Motorcycle,
        Self::Bicycle,
        Self::Pedestrian,
    ];

    fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(code as usize).copied()
    }

    /// The footprint (length, width in decimetres) a sender may leave off the wire.
    pub fn default_size_dm(self) -> (u8, u8) {
        match self {
            Self::Unknown => (10, 10),
            Self::Car => (45, 18),
            Self::Truck => (120, 25),
            Self::Bus => (120, 25),
            Self::Motorcycle => (22, 8),
            Self::Bicycle => (18, 6),
            Self::Pedestrian => (5, 5),
        }
    }

    /// Whether the class is a vehicle that may carry an agent of its own.
    pub fn is_vehicle(self) -> bool {
        matches!(self, Self::Car | Self::Truck | Self::Bus | Self::Motorcycle)
    }
}

/// An object perceived by the sender, relative to the sender's position in the sender's ENU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerceivedObject {
    /// The sender's id for this object, stable while it tracks it. Ids under 128 cost one byte.
    pub id: u16,
    pub class: ObjectClass,
    /// East and north offset from the sender's reported position, centimetres.
    pub offset_cm: [i32; 2],
    /// East and north velocity over ground, cm/s.
    pub velocity_cms: [i16; 2],
    /// Yaw in 1/256 turns counter-clockwise from East.
    pub yaw: u8,
    pub length_dm: u8,
    pub width_dm: u8,
    pub sigma: Sigma,
    pub confidence: Confidence,
}

impl PerceivedObject {
    pub fn offset_m(&self) -> [f64; 2] {
        [
            self.offset_cm[0] as f64 / 100.0,
            self.offset_cm[1] as f64 / 100.0,
        ]
    }
    pub fn velocity_mps(&self) -> [f64; 2] {
        [
            self.velocity_cms[0] as f64 / 100.0,
            self.velocity_cms[1] as f64 / 100.0,
        ]
    }
    pub fn yaw_rad(&self) -> f64 {
        yaw_from_u8(self.yaw)
    }
    pub fn length_m(&self) -> f64 {
        self.length_dm as f64 / 10.0
    }
    pub fn width_m(&self) -> f64 {
        self.width_dm as f64 / 10.0
    }
}

// Object encoding (see docs/protocol.md): a head byte, then only the fields the head says are
// there. Moving objects whose yaw equals their course and objects of their class's default size
// leave those fields out; that is what keeps a typical object near 10 bytes.
const CLASS_MASK: u8 = 0b0000_0111;
const F_MOVING: u8 = 0b0000_1000;
const F_YAW: u8 = 0b0001_0000;
const F_SIZE: u8 = 0b0010_0000;
const RESERVED: u8 = 0b1100_0000;

impl PerceivedObject {
    fn head(&self) -> u8 {
        let mut head = self.class as u8;
        let course = course_u8(self.velocity_cms);
        if course.is_some() {
            head |= F_MOVING;
        }
        if course != Some(self.yaw) {
            head |= F_YAW;
        }
        if (self.length_dm, self.width_dm) != self.class.default_size_dm() {
            head |= F_SIZE;
        }
        head
    }
}

impl Serialize for PerceivedObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let head = self.head();
        let n = 5
            + 2 * usize::from(head & F_MOVING != 0)
            + usize::from(head & F_YAW != 0)
            + 2 * usize::from(head & F_SIZE != 0);
        let mut t = s.serialize_tuple(n)?;
        t.serialize_element(&head)?;
        t.serialize_element(&self.id)?;
        t.serialize_element(&self.offset_cm[0])?;
        t.serialize_element(&self.offset_cm[1])?;
        if head & F_MOVING != 0 {
            t.serialize_element(&self.velocity_cms[0])?;
            t.serialize_element(&self.velocity_cms[1])?;
        }
        if head & F_YAW != 0 {
            t.serialize_element(&self.yaw)?;
        }
        if head & F_SIZE != 0 {
            t.serialize_element(&self.length_dm)?;
            t.serialize_element(&self.width_dm)?;
        }
        t.serialize_element(&((self.sigma.code() << 4) | self.confidence.code()))?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for PerceivedObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = PerceivedObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a perceived object")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
                    seq: &mut A,
                ) -> Result<T, A::Error> {
                    seq.next_element()?
                        .ok_or_else(|| de::Error::custom("object ends early"))
                }
                let head: u8 = next(&mut seq)?;
                if head & RESERVED != 0 {
                    return Err(de::Error::custom("reserved object flag bits set"));
                }
                let class = ObjectClass::from_code(head & CLASS_MASK)
                    .ok_or_else(|| de::Error::custom("unknown object class"))?;
                let id = next(&mut seq)?;
                let offset_cm = [next(&mut seq)?, next(&mut seq)?];
                let velocity_cms = if head & F_MOVING != 0 {
                    let v = [next(&mut seq)?, next(&mut seq)?];
                    if v == [0, 0] {
                        return Err(de::Error::custom("moving flag with zero velocity"));
                    }
                    v
                } else {
                    [0, 0]
                };
                let yaw = if head & F_YAW != 0 {
                    next(&mut seq)?
                } else {
                    course_u8(velocity_cms)
                        .ok_or_else(|| de::Error::custom("standing object without yaw"))?
                };
                let (length_dm, width_dm) = if head & F_SIZE != 0 {
                    (next(&mut seq)?, next(&mut seq)?)
                } else {
                    class.default_size_dm()
                };
                let quality: u8 = next(&mut seq)?;
                Ok(PerceivedObject {
                    id,
                    class,
                    offset_cm,
                    velocity_cms,
                    yaw,
                    length_dm,
                    width_dm,
                    sigma: Sigma::from_code(quality >> 4).expect("a nibble"),
                    confidence: Confidence::from_code(quality & 0x0f).expect("a nibble"),
                })
            }
        }
        // The largest number of fields an object can have; postcard tuples carry no length, so
        // the visitor reads only as many as the head byte announces.
        d.deserialize_tuple(10, ObjectVisitor)
    }
}

/// The sender's state in SI units, as a perception stack or a simulator has it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EgoSi {
    pub lat_deg: f64,
    pub lon_deg: f64,
    /// Speed over ground, m/s (not negative: reversing is a yaw turned by half a turn).
    pub speed_mps: f64,
    /// Radians counter-clockwise from East.
    pub yaw_rad: f64,
    #[serde(default)]
    pub yaw_rate_radps: f64,
    #[serde(default)]
    pub accel_mps2: f64,
    pub length_m: f64,
    pub width_m: f64,
    /// One standard deviation of the horizontal position, metres.
    pub position_sigma_m: f64,
}

/// A perceived object in SI units, relative to the sender in the sender's ENU frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ObjectSi {
    pub class: ObjectClass,
    /// East and north offset from the sender, metres.
    pub offset_m: [f64; 2],
    /// East and north velocity over ground, m/s.
    pub velocity_mps: [f64; 2],
    /// Radians counter-clockwise from East.
    pub yaw_rad: f64,
    pub length_m: f64,
    pub width_m: f64,
    pub sigma_m: f64,
    pub confidence: f64,
}

impl EgoState {
    /// Quantises SI values for the wire; non-finite or out-of-range values are refused.
    pub fn from_si(e: &EgoSi) -> Result<Self, ValidationError> {
        let lat = units::finite("ego.lat_deg", e.lat_deg)?;
        let lon = units::finite("ego.lon_deg", e.lon_deg)?;
        if !(-90.0..=90.0).contains(&lat) {
            return Err(ValidationError::OutOfRange {
                field: "ego.lat_deg",
                value: lat,
            });
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(ValidationError::OutOfRange {
                field: "ego.lon_deg",
                value: lon,
            });
        }
        let ego = Self {
            position: GeoPoint::from_degrees(lat, lon),
            speed_cms: units::fixed("ego.speed_mps", e.speed_mps, 100.0)?,
            yaw_ddeg: units::yaw_to_ddeg("ego.yaw_rad", e.yaw_rad)?,
            yaw_rate_mrads: units::fixed("ego.yaw_rate_radps", e.yaw_rate_radps, 1000.0)?,
            accel_cms2: units::fixed("ego.accel_mps2", e.accel_mps2, 100.0)?,
            length_dm: units::fixed("ego.length_m", e.length_m, 10.0)?,
            width_dm: units::fixed("ego.width_m", e.width_m, 10.0)?,
            position_sigma_cm: units::fixed(
                "ego.position_sigma_m",
                e.position_sigma_m.max(0.0),
                100.0,
            )?,
        };
        Ok(ego)
    }
}

impl PerceivedObject {
    /// Quantises SI values for the wire under the wire id `id`; non-finite or out-of-range
    /// values are refused.
    pub fn from_si(id: u16, o: &ObjectSi) -> Result<Self, ValidationError> {
        let velocity_cms = [
            units::fixed("object.velocity_mps", o.velocity_mps[0], 100.0)?,
            units::fixed("object.velocity_mps", o.velocity_mps[1], 100.0)?,
        ];
        Ok(Self {
            id,
            class: o.class,
            offset_cm: [
                units::fixed("object.offset_m", o.offset_m[0], 100.0)?,
                units::fixed("object.offset_m", o.offset_m[1], 100.0)?,
            ],
            velocity_cms,
            yaw: units::yaw_to_u8("object.yaw_rad", o.yaw_rad)?,
            length_dm: units::fixed::<u8>("object.length_m", o.length_m, 10.0)?.max(1),
            width_dm: units::fixed::<u8>("object.width_m", o.width_m, 10.0)?.max(1),
            sigma: Sigma::from_m("object.sigma_m", o.sigma_m)?,
            confidence: Confidence::from_fraction("object.confidence", o.confidence)?,
        })
    }
}

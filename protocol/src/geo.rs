//! WGS84 geodesy: fixed-point wire positions, and conversions between geodetic coordinates and
//! a local East-North-Up frame through ECEF (exact, not a flat-earth approximation).

use nalgebra::{Matrix3, Vector3};
use serde::{Deserialize, Serialize};

const A: f64 = 6_378_137.0; // WGS84 semi-major axis, m
const F: f64 = 1.0 / 298.257_223_563; // WGS84 flattening
const E2: f64 = F * (2.0 - F); // first eccentricity squared
const B: f64 = A * (1.0 - F); // semi-minor axis
const EP2: f64 = (A * A - B * B) / (B * B); // second eccentricity squared

/// A horizontal WGS84 position in 1e-7 degree steps (about 1.1 cm of latitude), as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat_e7: i32,
    pub lon_e7: i32,
}

impl GeoPoint {
    pub fn from_degrees(lat_deg: f64, lon_deg: f64) -> Self {
        Self {
            lat_e7: (lat_deg * 1e7).round() as i32,
            lon_e7: (lon_deg * 1e7).round() as i32,
        }
    }
    pub fn lat_deg(&self) -> f64 {
        self.lat_e7 as f64 / 1e7
    }
    pub fn lon_deg(&self) -> f64 {
        self.lon_e7 as f64 / 1e7
    }
    pub fn to_geodetic(&self) -> Geodetic {
        Geodetic::new(self.lat_deg(), self.lon_deg(), 0.0)
    }
    pub fn is_valid(&self) -> bool {
        (-900_000_000..=900_000_000).contains(&self.lat_e7)
            && (-1_800_000_000..=1_800_000_000).contains(&self.lon_e7)
    }
}

/// A geodetic position in degrees and metres above the ellipsoid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geodetic {
    pub lat_deg: f64,
    pub lon_deg: f64,
    pub alt_m: f64,
}

impl Geodetic {
    pub fn new(lat_deg: f64, lon_deg: f64, alt_m: f64) -> Self {
        Self {
            lat_deg,
            lon_deg,
            alt_m,
        }
    }

    pub fn to_point(&self) -> GeoPoint {
        GeoPoint::from_degrees(self.lat_deg, self.lon_deg)
    }

    pub fn to_ecef(&self) -> Vector3<f64> {
        let (lat, lon) = (self.lat_deg.to_radians(), self.lon_deg.to_radians());
        let n = A / (1.0 - E2 * lat.sin().powi(2)).sqrt();
        Vector3::new(
            (n + self.alt_m) * lat.cos() * lon.cos(),
            (n + self.alt_m) * lat.cos() * lon.sin(),
            (n * (1.0 - E2) + self.alt_m) * lat.sin(),
        )
    }

    /// Bowring's method with two refinement steps: sub-millimetre near the Earth's surface.
    pub fn from_ecef(p: &Vector3<f64>) -> Self {
        let lon = p.y.atan2(p.x);
        let r = (p.x * p.x + p.y * p.y).sqrt();
        let mut beta = (A * p.z).atan2(B * r);
        let mut lat = 0.0;
        for _ in 0..3 {
            lat = (p.z + EP2 * B * beta.sin().powi(3)).atan2(r - E2 * A * beta.cos().powi(3));
            beta = ((1.0 - F) * lat.tan()).atan();
        }
        let n = A / (1.0 - E2 * lat.sin().powi(2)).sqrt();
        let alt = if lat.cos().abs() > 1e-9 {
            r / lat.cos() - n
        } else {
            p.z.abs() / lat.sin().abs() - n * (1.0 - E2)
        };
        Self::new(lat.to_degrees(), lon.to_degrees(), alt)
    }
}

/// A local East-North-Up frame anchored at an origin.
#[derive(Debug, Clone, Copy)]
pub struct EnuFrame {
    origin: Geodetic,
    origin_ecef: Vector3<f64>,
    /// Rows are the East, North and Up unit vectors in ECEF.
    ecef_to_enu: Matrix3<f64>,
}

impl EnuFrame {
    pub fn new(origin: Geodetic) -> Self {
        let (lat, lon) = (origin.lat_deg.to_radians(), origin.lon_deg.to_radians());
        let (sl, cl) = lat.sin_cos();
        let (so, co) = lon.sin_cos();
        #[rustfmt::skip]
        let ecef_to_enu = Matrix3::new(
            -so,       co,       0.0,
            -sl * co, -sl * so,  cl,
             cl * co,  cl * so,  sl,
        );
        Self {
            origin,
            origin_ecef: origin.to_ecef(),
            ecef_to_enu,
        }
    }

    pub fn origin(&self) -> Geodetic {
        self.origin
    }

    pub fn to_enu(&self, p: &Geodetic) -> Vector3<f64> {
        self.ecef_to_enu * (p.to_ecef() - self.origin_ecef)
    }

    pub fn to_geodetic(&self, enu: &Vector3<f64>) -> Geodetic {
        Geodetic::from_ecef(&(self.origin_ecef + self.ecef_to_enu.transpose() * enu))
    }

    /// Rotates a horizontal vector (velocity, offset) given in `other`'s ENU axes into this
    /// frame's axes. Over a few kilometres the axes differ by well under a milliradian, but the
    /// rotation is exact and cheap.
    pub fn rotate_from(&self, other: &EnuFrame, v: [f64; 2]) -> [f64; 2] {
        let ecef = other.ecef_to_enu.transpose() * Vector3::new(v[0], v[1], 0.0);
        let local = self.ecef_to_enu * ecef;
        [local.x, local.y]
    }
}

//! What each connected vehicle reports: its own pose with GNSS noise, and the road users
//! within its sensor range with position and velocity noise that matches the sigma it states.
//! Road users not in the scene at that instant (a traced one before it enters or after it
//! leaves) are neither seen nor seeing.

use crate::rng::Rng;
use crate::world::{Scenario, State};
use edge_node::geometry::V2;
use nalgebra::Vector3;
use protocol::{EgoSi, EnuFrame, Geodetic, ObjectSi, MAX_OBJECTS};
use vehicle_agent::{ObjectReport, Perception};

#[derive(Debug, Clone, Copy)]
pub struct SensorModel {
    pub range_m: f64,
    /// Position noise: `base + per_m * range`, one sigma, metres.
    pub sigma_base_m: f64,
    pub sigma_per_m: f64,
    pub velocity_sigma_mps: f64,
    pub gnss_sigma_m: f64,
}

impl Default for SensorModel {
    fn default() -> Self {
        Self {
            range_m: 80.0,
            sigma_base_m: 0.15,
            sigma_per_m: 0.004,
            velocity_sigma_mps: 0.1,
            gnss_sigma_m: 0.2,
        }
    }
}

/// Converts between the scenario's ENU metres and WGS84.
pub struct Geo {
    pub frame: EnuFrame,
}

impl Geo {
    pub fn new(origin: (f64, f64)) -> Self {
        Self {
            frame: EnuFrame::new(Geodetic::new(origin.0, origin.1, 0.0)),
        }
    }

    pub fn to_geodetic(&self, p: V2) -> Geodetic {
        self.frame.to_geodetic(&Vector3::new(p.x, p.y, 0.0))
    }

    pub fn to_local(&self, g: &Geodetic) -> V2 {
        let v = self.frame.to_enu(g);
        V2::new(v.x, v.y)
    }
}

/// The perception of actor `me` at `t_s`, or `None` while `me` is not in the scene. Noise
/// draws come from `rng`, so a seed fixes them.
pub fn perceive(
    scenario: &Scenario,
    geo: &Geo,
    sensor: &SensorModel,
    me: usize,
    t_s: f64,
    rng: &mut Rng,
) -> Option<Perception> {
    perceive_among(
        scenario,
        geo,
        sensor,
        me,
        t_s,
        0..scenario.actors.len(),
        rng,
    )
}

/// [`perceive`] looking only at the actors in `candidates` (ascending indices, a superset of
/// those within range): the fast driver narrows them with a grid, and the result is the same
/// as looking at every actor, noise draws included.
pub fn perceive_among(
    scenario: &Scenario,
    geo: &Geo,
    sensor: &SensorModel,
    me: usize,
    t_s: f64,
    candidates: impl IntoIterator<Item = usize>,
    rng: &mut Rng,
) -> Option<Perception> {
    let actor = &scenario.actors[me];
    let truth: State = actor.state(t_s)?;
    let gnss = V2::new(rng.normal(), rng.normal()) * sensor.gnss_sigma_m;
    let reported = truth.pos + gnss;
    let ego_geo = geo.to_geodetic(reported);
    let sender = EnuFrame::new(ego_geo);
    let ego = EgoSi {
        lat_deg: ego_geo.lat_deg,
        lon_deg: ego_geo.lon_deg,
        speed_mps: truth.speed,
        yaw_rad: geo_yaw(&sender, geo, truth.yaw),
        yaw_rate_radps: 0.0,
        accel_mps2: truth.accel,
        length_m: actor.length_m,
        width_m: actor.width_m,
        position_sigma_m: sensor.gnss_sigma_m,
    };
    let mut objects = Vec::new();
    let mut ranges = Vec::new();
    for i in candidates {
        if i == me {
            continue;
        }
        let other = &scenario.actors[i];
        let Some(s) = other.state(t_s) else {
            continue;
        };
        let range = (s.pos - truth.pos).norm();
        if range > sensor.range_m {
            continue;
        }
        let sigma = sensor.sigma_base_m + sensor.sigma_per_m * range;
        let pos = s.pos + V2::new(rng.normal(), rng.normal()) * sigma;
        let vel = s.vel + V2::new(rng.normal(), rng.normal()) * sensor.velocity_sigma_mps;
        // Sensors measure from where the vehicle really is; the vehicle reports the offset
        // against the position its GNSS gives, so every object it reports carries its GNSS
        // error, as on a real vehicle. Offsets are in the vehicle's own ENU axes.
        let offset = sender.rotate_from(&geo.frame, [pos.x - truth.pos.x, pos.y - truth.pos.y]);
        let vel = sender.rotate_from(&geo.frame, [vel.x, vel.y]);
        ranges.push(range);
        objects.push(ObjectReport {
            id: i as u64 + 1000,
            object: ObjectSi {
                class: other.class,
                offset_m: offset,
                velocity_mps: vel,
                yaw_rad: geo_yaw(&sender, geo, s.yaw),
                length_m: other.length_m,
                width_m: other.width_m,
                sigma_m: sigma.hypot(sensor.gnss_sigma_m),
                confidence: 0.9,
            },
        });
    }
    if objects.len() > MAX_OBJECTS {
        // A sensor reports so many objects at most: the nearest ones, in actor order.
        let mut by_range: Vec<usize> = (0..objects.len()).collect();
        by_range.sort_by(|&a, &b| ranges[a].total_cmp(&ranges[b]).then(a.cmp(&b)));
        let mut keep = vec![false; objects.len()];
        for &k in &by_range[..MAX_OBJECTS] {
            keep[k] = true;
        }
        let mut k = 0;
        objects.retain(|_| {
            k += 1;
            keep[k - 1]
        });
    }
    Some(Perception {
        capture_local_us: None,
        ego,
        objects,
    })
}

/// A yaw in the scenario's axes expressed in `sender`'s axes.
fn geo_yaw(sender: &EnuFrame, geo: &Geo, yaw: f64) -> f64 {
    let d = sender.rotate_from(&geo.frame, [yaw.cos(), yaw.sin()]);
    d[1].atan2(d[0])
}

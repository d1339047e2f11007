//! What each connected vehicle reports: its own pose with GNSS noise, and the road users
//! within its sensor range that it can see (other road users' footprints occlude, in 2-D),
//! with position and velocity noise that matches the sigma it states.
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
    /// Whether other road users' footprints hide what is behind them.
    pub occlusion: bool,
    /// Field of view, degrees, centred on the direction of travel (360: all around).
    pub fov_deg: f64,
    /// Probability that a visible road user is missed in one frame.
    pub miss: f64,
    /// Expected number of false detections per frame (each a standing `Unknown` object at a
    /// random place within range, never seen again).
    pub false_positives: f64,
}

impl Default for SensorModel {
    fn default() -> Self {
        Self {
            range_m: 80.0,
            sigma_base_m: 0.15,
            sigma_per_m: 0.004,
            velocity_sigma_mps: 0.1,
            gnss_sigma_m: 0.2,
            occlusion: true,
            fov_deg: 360.0,
            miss: 0.0,
            false_positives: 0.0,
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
    // Everyone near enough to be seen or to hide someone: footprints within range plus the
    // largest half-diagonal of a road user.
    const OCCLUDER_MARGIN_M: f64 = 10.0;
    let candidates = candidates.into_iter();
    let capacity = candidates.size_hint().0;
    let (mut near, mut states) = (Vec::with_capacity(capacity), Vec::with_capacity(capacity));
    for i in candidates.filter(|&i| i != me) {
        let a = &scenario.actors[i];
        let Some(s) = a.state(t_s) else {
            continue;
        };
        if (s.pos - truth.pos).norm() <= sensor.range_m + OCCLUDER_MARGIN_M {
            near.push((i, a.mover_at_state(&s).corners()));
            states.push(s);
        }
    }
    let reach = nearest_reach(truth.pos, &near);
    let mut objects = Vec::new();
    let mut ranges = Vec::new();
    for (&(i, ref corners), &s) in near.iter().zip(&states) {
        let other = &scenario.actors[i];
        let range = (s.pos - truth.pos).norm();
        if range > sensor.range_m {
            continue;
        }
        if sensor.fov_deg < 360.0 {
            let d = s.pos - truth.pos;
            let off_axis = (d.y.atan2(d.x) - truth.yaw)
                .sin()
                .atan2((d.y.atan2(d.x) - truth.yaw).cos());
            if off_axis.abs().to_degrees() > sensor.fov_deg / 2.0 {
                continue;
            }
        }
        if sensor.occlusion && !visible(truth.pos, i, corners, &near, &reach) {
            continue;
        }
        if sensor.miss > 0.0 && rng.uniform() < sensor.miss {
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
    // False detections: one with probability `false_positives` (below 1), else that many on
    // average, each a standing unknown object somewhere within range.
    let mut n_false = sensor.false_positives.floor() as usize;
    if rng.uniform() < sensor.false_positives.fract() {
        n_false += 1;
    }
    for k in 0..n_false {
        let (r, a) = (
            rng.uniform().sqrt() * sensor.range_m,
            rng.uniform() * std::f64::consts::TAU,
        );
        let offset = sender.rotate_from(&geo.frame, [r * a.cos(), r * a.sin()]);
        ranges.push(r);
        objects.push(ObjectReport {
            // Ids no real object has, new every time.
            id: u64::MAX - (t_s * 1e3) as u64 * 16 - k as u64,
            object: ObjectSi {
                class: protocol::ObjectClass::Unknown,
                offset_m: offset,
                velocity_mps: [0.0, 0.0],
                yaw_rad: 0.0,
                length_m: 1.0,
                width_m: 1.0,
                sigma_m: (sensor.sigma_base_m + sensor.sigma_per_m * r).hypot(sensor.gnss_sigma_m),
                confidence: 0.3,
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

/// Whether the observer at `eye` sees any of five points of target `i`'s footprint (its centre
/// and its corners pulled 10 % towards the centre, so a grazing ray does not count) past every
/// other footprint in `near`. `reach[k]` is how close footprint `k` comes to the eye at most
/// ([`nearest_reach`]): one that stays farther away than the target cannot hide it, so only
/// the others are tested.
fn visible(eye: V2, i: usize, corners: &[V2; 4], near: &[(usize, [V2; 4])], reach: &[f64]) -> bool {
    let centre = (corners[0] + corners[1] + corners[2] + corners[3]) / 4.0;
    let pulled = corners.map(|c| centre + (c - centre) * 0.9);
    // Every point looked at is at most this far from the eye.
    let farthest = (centre - eye).norm() + (corners[0] - centre).norm();
    let occluders = || {
        near.iter()
            .zip(reach)
            .filter(move |((j, _), r)| *j != i && **r <= farthest)
            .map(|((_, rect), _)| rect)
    };
    std::iter::once(centre)
        .chain(pulled)
        .any(|p| occluders().all(|rect| !segment_meets_rect(eye, p, rect)))
}

/// For each footprint, a lower bound of its distance from `eye`: the centre's distance less
/// the half-diagonal (a little less, so that rounding never drops an occluder).
fn nearest_reach(eye: V2, near: &[(usize, [V2; 4])]) -> Vec<f64> {
    near.iter()
        .map(|(_, c)| {
            let centre = (c[0] + c[1] + c[2] + c[3]) / 4.0;
            (centre - eye).norm() - (c[0] - centre).norm() - 1e-6
        })
        .collect()
}

/// Whether segment `a`-`b` touches the convex quadrilateral `rect`.
fn segment_meets_rect(a: V2, b: V2, rect: &[V2; 4]) -> bool {
    // Bounding boxes first: most footprints are nowhere near the line of sight.
    let (lo, hi) = rect.iter().fold(
        (V2::repeat(f64::INFINITY), V2::repeat(f64::NEG_INFINITY)),
        |(lo, hi), c| (lo.inf(c), hi.sup(c)),
    );
    if a.x.max(b.x) < lo.x || a.x.min(b.x) > hi.x || a.y.max(b.y) < lo.y || a.y.min(b.y) > hi.y {
        return false;
    }
    let inside = |p: V2| {
        let signs = [0, 1, 2, 3].map(|k| (rect[(k + 1) % 4] - rect[k]).perp(&(p - rect[k])));
        signs.iter().all(|s| *s >= 0.0) || signs.iter().all(|s| *s <= 0.0)
    };
    if inside(a) || inside(b) {
        return true;
    }
    let cross = |o: V2, p: V2, q: V2| (p - o).perp(&(q - o));
    (0..4).any(|k| {
        let (c, d) = (rect[k], rect[(k + 1) % 4]);
        let (d1, d2) = (cross(a, b, c), cross(a, b, d));
        let (d3, d4) = (cross(c, d, a), cross(c, d, b));
        d1 * d2 < 0.0 && d3 * d4 < 0.0
    })
}

/// A yaw in the scenario's axes expressed in `sender`'s axes.
fn geo_yaw(sender: &EnuFrame, geo: &Geo, yaw: f64) -> f64 {
    let d = sender.rotate_from(&geo.frame, [yaw.cos(), yaw.sin()]);
    d[1].atan2(d[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(cx: f64, cy: f64, half_l: f64, half_w: f64) -> [V2; 4] {
        [
            V2::new(cx + half_l, cy + half_w),
            V2::new(cx - half_l, cy + half_w),
            V2::new(cx - half_l, cy - half_w),
            V2::new(cx + half_l, cy - half_w),
        ]
    }

    #[test]
    fn segments_and_rectangles() {
        let r = rect(5.0, 0.0, 1.0, 1.0);
        let cases = [
            ((0.0, 0.0), (10.0, 0.0), true),  // straight through
            ((0.0, 2.0), (10.0, 2.0), false), // passes above
            ((5.0, 0.5), (20.0, 20.0), true), // starts inside
            ((0.0, 0.0), (3.0, 0.0), false),  // stops short
            ((0.0, -3.0), (10.0, 3.0), true), // diagonal across
            ((6.5, -5.0), (6.5, 5.0), false), // beside it
        ];
        for ((ax, ay), (bx, by), meets) in cases {
            assert_eq!(
                segment_meets_rect(V2::new(ax, ay), V2::new(bx, by), &r),
                meets,
                "({ax}, {ay}) - ({bx}, {by})"
            );
        }
    }

    #[test]
    fn a_van_hides_what_stands_right_behind_it_but_not_what_stands_beside_it() {
        let van = (1, rect(5.0, 0.0, 3.0, 1.1));
        let behind = (2, rect(9.0, 0.0, 0.25, 0.25));
        let beside = (3, rect(9.0, 4.0, 0.25, 0.25));
        let near = [van, behind, beside];
        let eye = V2::new(-20.0, 0.0);
        let reach = nearest_reach(eye, &near);
        assert!(!visible(eye, 2, &behind.1, &near, &reach));
        assert!(visible(eye, 3, &beside.1, &near, &reach));
        assert!(
            visible(eye, 1, &van.1, &near, &reach),
            "the van itself is seen"
        );
    }
}

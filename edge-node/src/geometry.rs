//! Footprint geometry at constant velocity: time to collision and closest approach of two
//! oriented rectangles. This is the physics baseline that every learned model is compared with,
//! and the simulator's ground truth uses the same functions, so "true conflict" and "alert" are
//! measured with one ruler.
//!
//! Both footprints keep their yaw over the horizon (no turning); the relative motion of two
//! rectangles is then a point moving along a ray against their Minkowski difference, which is a
//! convex polygon, so both questions have exact, cheap answers.

use nalgebra::Vector2;

pub type V2 = Vector2<f64>;

/// A road user's rectangle and its constant velocity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mover {
    pub center: V2,
    /// Radians counter-clockwise from East.
    pub yaw: f64,
    pub length: f64,
    pub width: f64,
    pub velocity: V2,
}

impl Mover {
    pub fn corners(&self) -> [V2; 4] {
        let (s, c) = self.yaw.sin_cos();
        let fwd = V2::new(c, s) * (self.length / 2.0);
        let left = V2::new(-s, c) * (self.width / 2.0);
        [
            self.center + fwd + left,
            self.center - fwd + left,
            self.center - fwd - left,
            self.center + fwd - left,
        ]
    }

    pub fn at(&self, dt_s: f64) -> Self {
        Self {
            center: self.center + self.velocity * dt_s,
            ..*self
        }
    }

    /// Half the diagonal: the radius of the smallest circle around the centre holding the
    /// footprint.
    pub fn radius(&self) -> f64 {
        // Not `hypot`: footprints are metres, far from overflow, and this runs per pair.
        (self.length * self.length + self.width * self.width).sqrt() / 2.0
    }
}

/// How two movers meet within a horizon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Encounter {
    /// Seconds until the footprints first touch, if they do within the horizon (0 if they
    /// already overlap).
    pub ttc_s: Option<f64>,
    /// Time of least distance within the horizon (equal to `ttc_s` when they collide).
    pub closest_s: f64,
    /// Least gap between the footprints within the horizon, metres (0 when they collide).
    pub min_gap_m: f64,
    /// Midpoint of the two centres at `closest_s`.
    pub conflict_point: V2,
}

/// The Minkowski difference `B - A` as a counter-clockwise convex polygon: `A` and `B` overlap
/// exactly when it contains the origin. It is the sum of `B` and `A` turned half round, two
/// convex quadrilaterals, so their edges are merged in the order of their directions (from each
/// one's lowest corner, where the directions start), giving at most 8 vertices; parallel edges
/// become one, so no vertex is collinear with its neighbours. Everything stays on the stack,
/// since this runs for every candidate pair of every frame.
fn minkowski_difference(a: &Mover, b: &Mover) -> Polygon {
    let p = b.corners();
    let q = a.corners().map(|c| -c);
    let lowest = |r: &[V2; 4]| {
        (1..4).fold(0, |best, k| {
            let (c, m) = (r[k], r[best]);
            if c.y < m.y || (c.y == m.y && c.x < m.x) {
                k
            } else {
                best
            }
        })
    };
    let (p0, q0) = (lowest(&p), lowest(&q));
    let vertex = |r: &[V2; 4], start: usize, k: usize| r[(start + k) % 4];
    let edge = |r: &[V2; 4], start: usize, k: usize| vertex(r, start, k + 1) - vertex(r, start, k);
    let mut poly = Polygon {
        vertices: [V2::zeros(); 8],
        len: 0,
    };
    let (mut i, mut j) = (0, 0);
    while i < 4 || j < 4 {
        let v = vertex(&p, p0, i) + vertex(&q, q0, j);
        if poly.len == 0 || poly.vertices[poly.len - 1] != v {
            poly.vertices[poly.len] = v;
            poly.len += 1;
        }
        // Which edge turns less from here: the one whose direction comes first.
        let turn = if i == 4 {
            -1.0
        } else if j == 4 {
            1.0
        } else {
            edge(&p, p0, i).perp(&edge(&q, q0, j))
        };
        if turn >= 0.0 {
            i += 1;
        }
        if turn <= 0.0 {
            j += 1;
        }
        if poly.len == poly.vertices.len() {
            break;
        }
    }
    poly
}

/// A convex polygon of at most 8 vertices, counter-clockwise, on the stack.
struct Polygon {
    vertices: [V2; 8],
    len: usize,
}

impl std::ops::Deref for Polygon {
    type Target = [V2];
    fn deref(&self) -> &[V2] {
        &self.vertices[..self.len]
    }
}

/// The earliest `t >= 0` at which `v * t` lies in the polygon (Cyrus-Beck clipping).
fn ray_entry(poly: &[V2], v: &V2) -> Option<f64> {
    let n = poly.len();
    if n < 3 {
        return None;
    }
    let (mut t_in, mut t_out) = (0.0f64, f64::INFINITY);
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + 1) % n]);
        let e = b - a;
        // Outward unit normal of a counter-clockwise edge; inside means normal . (x - a) <= 0.
        // Unit length, so that "parallel" below means parallel and not "a very short edge".
        let length = e.norm();
        if length < 1e-12 {
            continue;
        }
        let normal = V2::new(e.y, -e.x) / length;
        let num = normal.dot(&a); // normal . (v t) <= normal . a
        let den = normal.dot(v);
        if den.abs() < 1e-12 {
            if num < 0.0 {
                return None; // parallel to this edge and outside it
            }
        } else if den > 0.0 {
            t_out = t_out.min(num / den);
        } else {
            t_in = t_in.max(num / den);
        }
        if t_in > t_out {
            return None;
        }
    }
    Some(t_in)
}

/// Seconds until the footprints of `a` and `b` first touch within `[0, horizon_s]` (0 if they
/// already overlap), both moving at constant velocity: [`encounter`]'s `ttc_s` without the
/// closest approach, for the many callers that only ask whether two road users collide.
pub fn time_to_collision(a: &Mover, b: &Mover, horizon_s: f64) -> Option<f64> {
    ray_entry(&minkowski_difference(a, b), &(a.velocity - b.velocity)).filter(|t| *t <= horizon_s)
}

/// How `a` and `b` meet over `[0, horizon_s]`, both moving at constant velocity.
pub fn encounter(a: &Mover, b: &Mover, horizon_s: f64) -> Encounter {
    let diff = minkowski_difference(a, b);
    // The gap at time t is the distance from (a.velocity - b.velocity) * t to `diff`.
    let v = a.velocity - b.velocity;
    let midpoint = |t: f64| (a.center + b.center) / 2.0 + (a.velocity + b.velocity) * (t / 2.0);
    if let Some(t) = ray_entry(&diff, &v).filter(|t| *t <= horizon_s) {
        return Encounter {
            ttc_s: Some(t),
            closest_s: t,
            min_gap_m: 0.0,
            conflict_point: midpoint(t),
        };
    }
    // No contact: the least gap is the distance between the segment swept by v * t over the
    // horizon and the polygon. Neither crosses the other, so it is the least of the
    // point-to-segment distances between the segment's ends and the edges, and between the
    // polygon's vertices and the segment.
    let seg_end = v * horizon_s;
    let mut best = (f64::INFINITY, 0.0);
    let n = diff.len();
    for i in 0..n {
        let (a, b) = (diff[i], diff[(i + 1) % n]);
        for (p, t) in [(V2::zeros(), 0.0), (seg_end, horizon_s)] {
            let d = point_segment(&p, &a, &b).0;
            if d < best.0 {
                best = (d, t);
            }
        }
        let (d, u) = point_segment(&a, &V2::zeros(), &seg_end);
        if d < best.0 {
            best = (d, u * horizon_s);
        }
    }
    if n == 1 {
        let (d, u) = point_segment(&diff[0], &V2::zeros(), &seg_end);
        best = (d, u * horizon_s);
    }
    Encounter {
        ttc_s: None,
        closest_s: best.1,
        min_gap_m: best.0,
        conflict_point: midpoint(best.1),
    }
}

/// Distance from `p` to segment `a`-`b`, and the position of the nearest point as a fraction
/// of the way from `a` to `b`.
fn point_segment(p: &V2, a: &V2, b: &V2) -> (f64, f64) {
    let ab = b - a;
    let len2 = ab.norm_squared();
    let u = if len2 > 0.0 {
        ((p - a).dot(&ab) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((a + ab * u - p).norm(), u)
}

/// Whether the circles around two footprints can come within touching distance over the
/// horizon: a cheap test that rules out most pairs before [`encounter`].
pub fn may_meet(a: &Mover, b: &Mover, horizon_s: f64) -> bool {
    let p = b.center - a.center;
    let v = b.velocity - a.velocity;
    let t = if v.norm_squared() > 0.0 {
        (-p.dot(&v) / v.norm_squared()).clamp(0.0, horizon_s)
    } else {
        0.0
    };
    (p + v * t).norm() <= a.radius() + b.radius()
}

#[cfg(test)]
mod tests;

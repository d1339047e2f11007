//! The built-in road layouts: arms, lanes, the movements through the junction, crosswalks,
//! signal timing, and who gives way to whom. Pure geometry and rules, no motion.

use crate::world::{Surface, SurfaceKind};
use edge_node::geometry::V2;
use serde::Deserialize;

pub const LANE_WIDTH_M: f64 = 3.5;
const HALF_LANE_M: f64 = LANE_WIDTH_M / 2.0;
/// From the junction centre to the end of each arm.
pub const ARM_LENGTH_M: f64 = 150.0;
/// From the junction centre to the stop line (and to the start of each outbound lane).
pub const STOP_LINE_M: f64 = 14.0;
/// From the junction centre to where a turn's curve starts and ends.
const CURVE_M: f64 = 8.0;
/// From the junction centre to the middle of each arm's crosswalk.
pub const CROSSWALK_M: f64 = 10.5;
const CROSSWALK_WIDTH_M: f64 = 3.0;
/// Half the carriageway: one lane each way.
pub const KERB_M: f64 = LANE_WIDTH_M;
/// How far a crossing path reaches onto the pavement on either side.
pub const PAVEMENT_M: f64 = 1.0;

/// Which road layout a scenario is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum LayoutKind {
    /// Four arms, one lane each way, fixed-time signals (East-West, then North-South), a
    /// crosswalk on every arm.
    #[serde(rename = "signalised-4way")]
    Signalised4Way,
    /// Four arms without signals: East-West is the major road, North and South give way.
    /// Crosswalks (zebras) on every arm.
    #[serde(rename = "unsignalised-crossing")]
    UnsignalisedCrossing,
    /// East-West major road with a minor arm from the South that gives way, and a crosswalk
    /// (zebra) on every arm.
    #[serde(rename = "t-junction")]
    TJunction,
}

/// An arm of the junction, named by the compass direction it leaves the centre in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arm {
    East,
    North,
    West,
    South,
}

impl Arm {
    pub const ALL: [Arm; 4] = [Arm::East, Arm::North, Arm::West, Arm::South];

    /// Unit vector from the centre along the arm.
    pub fn outward(self) -> V2 {
        match self {
            Arm::East => V2::new(1.0, 0.0),
            Arm::North => V2::new(0.0, 1.0),
            Arm::West => V2::new(-1.0, 0.0),
            Arm::South => V2::new(0.0, -1.0),
        }
    }

    pub fn opposite(self) -> Arm {
        match self {
            Arm::East => Arm::West,
            Arm::North => Arm::South,
            Arm::West => Arm::East,
            Arm::South => Arm::North,
        }
    }

    fn of_direction(d: V2) -> Arm {
        *Arm::ALL
            .iter()
            .max_by(|a, b| a.outward().dot(&d).total_cmp(&b.outward().dot(&d)))
            .expect("four arms")
    }

    /// The arm on the right of a vehicle that entered from `self` (driving on the right).
    pub fn right_of_entry(self) -> Arm {
        Arm::of_direction(right_of(-self.outward()))
    }

    pub fn is_east_west(self) -> bool {
        matches!(self, Arm::East | Arm::West)
    }
}

/// The right-hand normal of a direction.
pub fn right_of(d: V2) -> V2 {
    V2::new(d.y, -d.x)
}

/// A polyline with its cumulative arc lengths.
#[derive(Debug, Clone, PartialEq)]
pub struct Polyline {
    pts: Vec<V2>,
    cum: Vec<f64>,
}

impl Polyline {
    pub fn new(pts: Vec<V2>) -> Self {
        let mut cum = vec![0.0];
        for w in pts.windows(2) {
            cum.push(cum.last().copied().unwrap_or(0.0) + (w[1] - w[0]).norm());
        }
        Self { pts, cum }
    }

    pub fn len(&self) -> f64 {
        self.cum.last().copied().unwrap_or(0.0)
    }

    pub fn points(&self) -> &[V2] {
        &self.pts
    }

    /// The point at arc length `s` and the direction there; beyond either end the end segment
    /// continues straight.
    pub fn at(&self, s: f64) -> (V2, V2) {
        let k = self
            .cum
            .partition_point(|&c| c <= s)
            .clamp(1, self.pts.len() - 1);
        let (a, b) = (self.pts[k - 1], self.pts[k]);
        let seg = self.cum[k] - self.cum[k - 1];
        let dir = (b - a) / seg;
        (a + dir * (s - self.cum[k - 1]), dir)
    }

    /// The arc length of the point of the polyline nearest to `p`, and the distance to it.
    pub fn project(&self, p: V2) -> (f64, f64) {
        let mut best = (0.0, f64::INFINITY);
        for (k, w) in self.pts.windows(2).enumerate() {
            let seg = w[1] - w[0];
            let len2 = seg.norm_squared();
            let f = ((p - w[0]).dot(&seg) / len2).clamp(0.0, 1.0);
            let d = (w[0] + seg * f - p).norm();
            if d < best.1 {
                best = (self.cum[k] + f * len2.sqrt(), d);
            }
        }
        best
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    Straight,
    Left,
    Right,
}

/// A way through the junction: in along `from`'s inbound lane, out along `to`'s outbound lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Movement {
    pub from: Arm,
    pub to: Arm,
    pub turn: Turn,
    pub path: Polyline,
    /// Arc length of the stop line.
    pub stop_s: f64,
    /// Arc length where the outbound lane starts.
    pub exit_s: f64,
    /// The speed the curve through the junction allows, m/s.
    pub turn_speed_mps: f64,
}

/// A crosswalk across one arm, walked in either direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    pub arm: Arm,
    /// From the pavement on one side to the pavement on the other.
    pub path: Polyline,
    /// Arc lengths where the carriageway starts and ends along `path`.
    pub kerb_s: (f64, f64),
}

/// The light a lane's stop line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Light {
    Green,
    Yellow,
    Red,
}

/// Fixed-time signals: East-West green, yellow, all red, then North-South the same.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalTiming {
    pub green_s: f64,
    pub yellow_s: f64,
    pub all_red_s: f64,
}

impl Default for SignalTiming {
    fn default() -> Self {
        Self {
            green_s: 25.0,
            yellow_s: 3.0,
            all_red_s: 2.0,
        }
    }
}

impl SignalTiming {
    fn half(&self) -> f64 {
        self.green_s + self.yellow_s + self.all_red_s
    }

    fn offset(&self, arm: Arm) -> f64 {
        if arm.is_east_west() {
            0.0
        } else {
            self.half()
        }
    }

    /// The light `arm`'s inbound lane sees at `t_s`.
    pub fn light(&self, arm: Arm, t_s: f64) -> Light {
        let u = (t_s - self.offset(arm)).rem_euclid(2.0 * self.half());
        if u < self.green_s {
            Light::Green
        } else if u < self.green_s + self.yellow_s {
            Light::Yellow
        } else {
            Light::Red
        }
    }

    /// The start of the first green of `arm` at or after `t_s`.
    pub fn next_green(&self, arm: Arm, t_s: f64) -> f64 {
        let cycle = 2.0 * self.half();
        let start = self.offset(arm) + ((t_s - self.offset(arm)) / cycle).ceil() * cycle;
        if start - cycle >= t_s - 1e-9 {
            start - cycle
        } else {
            start
        }
    }

    /// Seconds of green `arm` has left at `t_s` (0 unless green).
    pub fn green_left(&self, arm: Arm, t_s: f64) -> f64 {
        let u = (t_s - self.offset(arm)).rem_euclid(2.0 * self.half());
        (self.green_s - u).max(0.0)
    }
}

/// A built road layout.
#[derive(Debug, Clone)]
pub struct Layout {
    pub kind: LayoutKind,
    pub arms: Vec<Arm>,
    pub movements: Vec<Movement>,
    pub crossings: Vec<Crossing>,
    pub signals: Option<SignalTiming>,
    /// `vv[i][j]`: where movements `i` and `j` first come within a lane width of each other,
    /// as (arc on i, arc on j); `None` for movements from the same arm (they follow) or paths
    /// that never meet.
    pub vv: Vec<Vec<Option<(f64, f64)>>>,
    /// `pv[c][m]`: where crossing `c` and movement `m` cross, as (arc on c, arc on m).
    pub pv: Vec<Vec<Option<(f64, f64)>>>,
}

/// A quadratic Bezier from `a` to `b` with control point `c`, sampled.
fn bezier(a: V2, c: V2, b: V2, n: usize) -> Vec<V2> {
    (1..n)
        .map(|k| {
            let t = k as f64 / n as f64;
            a * (1.0 - t) * (1.0 - t) + c * 2.0 * t * (1.0 - t) + b * t * t
        })
        .collect()
}

fn movement(from: Arm, to: Arm) -> Movement {
    let d = -from.outward();
    let e = to.outward();
    let start = from.outward() * ARM_LENGTH_M + right_of(d) * HALF_LANE_M;
    let stop = from.outward() * STOP_LINE_M + right_of(d) * HALF_LANE_M;
    let exit = e * STOP_LINE_M + right_of(e) * HALF_LANE_M;
    let end = e * ARM_LENGTH_M + right_of(e) * HALF_LANE_M;
    let turn = if to == from.opposite() {
        Turn::Straight
    } else if e.dot(&right_of(d)) > 0.5 {
        Turn::Right
    } else {
        Turn::Left
    };
    let mut pts = vec![start, stop];
    // The curve of a turn, between points CURVE_M from the centre on either arm.
    let p0 = from.outward() * CURVE_M + right_of(d) * HALF_LANE_M;
    let p1 = e * CURVE_M + right_of(e) * HALF_LANE_M;
    if turn != Turn::Straight {
        let control = p0 + d * (p1 - p0).dot(&d);
        pts.push(p0);
        pts.extend(bezier(p0, control, p1, 12));
        pts.push(p1);
    }
    pts.extend([exit, end]);
    let path = Polyline::new(pts);
    let stop_s = ARM_LENGTH_M - STOP_LINE_M;
    let exit_s = path.len() - (ARM_LENGTH_M - STOP_LINE_M);
    // About 2 m/s^2 of lateral acceleration on the curve.
    let radius = (p1 - p0).dot(&e).abs();
    let turn_speed_mps = match turn {
        Turn::Straight => f64::INFINITY,
        _ => (2.0 * radius).sqrt().max(3.0),
    };
    Movement {
        from,
        to,
        turn,
        path,
        stop_s,
        exit_s,
        turn_speed_mps,
    }
}

fn crossing(arm: Arm) -> Crossing {
    let along = arm.outward() * CROSSWALK_M;
    let across = right_of(arm.outward());
    let reach = KERB_M + PAVEMENT_M;
    Crossing {
        arm,
        path: Polyline::new(vec![along - across * reach, along + across * reach]),
        kerb_s: (PAVEMENT_M, PAVEMENT_M + 2.0 * KERB_M),
    }
}

/// Where `a` first comes within `within` metres of `b` (arc on a, arc on b), looking only at
/// the stretch of `a` in `range`.
fn first_approach(
    a: &Polyline,
    b: &Polyline,
    range: (f64, f64),
    within: f64,
) -> Option<(f64, f64)> {
    let mut s = range.0.max(0.0);
    while s <= range.1.min(a.len()) {
        let (p, _) = a.at(s);
        let (sb, d) = b.project(p);
        if d < within {
            return Some((s, sb));
        }
        s += 0.25;
    }
    None
}

impl Layout {
    pub fn new(kind: LayoutKind, signals: SignalTiming) -> Self {
        let arms: Vec<Arm> = match kind {
            LayoutKind::TJunction => vec![Arm::East, Arm::West, Arm::South],
            _ => Arm::ALL.to_vec(),
        };
        let mut movements = Vec::new();
        for &from in &arms {
            for &to in &arms {
                if from != to {
                    movements.push(movement(from, to));
                }
            }
        }
        let crossings: Vec<Crossing> = arms.iter().map(|&a| crossing(a)).collect();
        let vv = movements
            .iter()
            .map(|a| {
                movements
                    .iter()
                    .map(|b| {
                        if a.from == b.from {
                            return None;
                        }
                        let range = (a.stop_s - 1.0, a.exit_s + 1.0);
                        first_approach(&a.path, &b.path, range, LANE_WIDTH_M * 0.7)
                    })
                    .collect()
            })
            .collect();
        let pv = crossings
            .iter()
            .map(|c| {
                movements
                    .iter()
                    .map(|m| {
                        let range = (m.stop_s - 1.0, m.exit_s + 1.0);
                        first_approach(&m.path, &c.path, range, 0.3).map(|(sm, sc)| (sc, sm))
                    })
                    .collect()
            })
            .collect();
        Self {
            kind,
            arms,
            movements,
            crossings,
            signals: (kind == LayoutKind::Signalised4Way).then_some(signals),
            vv,
            pv,
        }
    }

    pub fn movement_index(&self, from: Arm, to: Arm) -> Option<usize> {
        self.movements
            .iter()
            .position(|m| m.from == from && m.to == to)
    }

    fn is_major(&self, arm: Arm) -> bool {
        match self.kind {
            LayoutKind::Signalised4Way => true,
            _ => arm.is_east_west(),
        }
    }

    /// Whether a vehicle on movement `i` gives way to one on movement `j` where their paths
    /// meet (both allowed to go by the signals): the minor road to the major road, a left turn
    /// to oncoming traffic, and otherwise the one coming from the right has way.
    pub fn gives_way(&self, i: usize, j: usize) -> bool {
        let (a, b) = (&self.movements[i], &self.movements[j]);
        match (self.is_major(a.from), self.is_major(b.from)) {
            (false, true) => return true,
            (true, false) => return false,
            _ => {}
        }
        if b.from == a.from.opposite() {
            return a.turn == Turn::Left && b.turn != Turn::Left;
        }
        b.from == a.from.right_of_entry()
    }

    /// The road surface, for pictures.
    pub fn surfaces(&self) -> Vec<Surface> {
        let mut out = Vec::new();
        for &arm in &self.arms {
            out.push(Surface {
                kind: SurfaceKind::Carriageway,
                centerline: vec![V2::zeros(), arm.outward() * ARM_LENGTH_M],
                width_m: 2.0 * KERB_M,
            });
        }
        // The junction box.
        out.push(Surface {
            kind: SurfaceKind::Carriageway,
            centerline: vec![V2::new(-KERB_M, 0.0), V2::new(KERB_M, 0.0)],
            width_m: 2.0 * KERB_M,
        });
        for c in &self.crossings {
            out.push(Surface {
                kind: SurfaceKind::Crosswalk,
                centerline: {
                    let (a, _) = c.path.at(c.kerb_s.0);
                    let (b, _) = c.path.at(c.kerb_s.1);
                    vec![a, b]
                },
                width_m: CROSSWALK_WIDTH_M,
            });
        }
        // Stop lines at signals, and on the arms that give way.
        for &arm in self
            .arms
            .iter()
            .filter(|&&a| self.signals.is_some() || !self.is_major(a))
        {
            let d = -arm.outward();
            let at = arm.outward() * STOP_LINE_M;
            out.push(Surface {
                kind: SurfaceKind::StopLine,
                centerline: vec![at, at + right_of(d) * LANE_WIDTH_M],
                width_m: 0.4,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_keep_to_the_right_and_turns_are_named_as_a_driver_would() {
        let l = Layout::new(LayoutKind::Signalised4Way, SignalTiming::default());
        let m = &l.movements[l.movement_index(Arm::West, Arm::East).unwrap()];
        assert_eq!(m.turn, Turn::Straight);
        // Eastbound on the south side of the road.
        assert!((m.path.at(10.0).0.y + 1.75).abs() < 1e-9);
        let m = &l.movements[l.movement_index(Arm::West, Arm::South).unwrap()];
        assert_eq!(m.turn, Turn::Right);
        let m = &l.movements[l.movement_index(Arm::West, Arm::North).unwrap()];
        assert_eq!(m.turn, Turn::Left);
        assert!(m.turn_speed_mps > 4.0 && m.turn_speed_mps < 8.0);
        assert_eq!(Arm::West.right_of_entry(), Arm::South);
    }

    #[test]
    fn crossing_flows_meet_and_a_left_turn_gives_way_to_oncoming_traffic() {
        let l = Layout::new(LayoutKind::Signalised4Way, SignalTiming::default());
        let we = l.movement_index(Arm::West, Arm::East).unwrap();
        let sn = l.movement_index(Arm::South, Arm::North).unwrap();
        let ew = l.movement_index(Arm::East, Arm::West).unwrap();
        let wn = l.movement_index(Arm::West, Arm::North).unwrap();
        let (a, b) = l.vv[we][sn].expect("perpendicular flows meet");
        let (pa, _) = l.movements[we].path.at(a);
        let (pb, _) = l.movements[sn].path.at(b);
        assert!((pa - pb).norm() < LANE_WIDTH_M);
        assert!(l.vv[we][ew].is_none(), "opposing straight flows never meet");
        assert!(l.vv[wn][ew].is_some());
        assert!(l.gives_way(wn, ew));
        assert!(!l.gives_way(ew, wn));
        // Every crossing meets the flows in and out of its arm.
        let c = l.crossings.iter().position(|c| c.arm == Arm::West).unwrap();
        assert!(l.pv[c][we].is_some() && l.pv[c][ew].is_some());
        assert!(l.pv[c][sn].is_none());
    }

    #[test]
    fn the_minor_road_gives_way_to_the_major_one() {
        let l = Layout::new(LayoutKind::TJunction, SignalTiming::default());
        assert_eq!(l.movements.len(), 6);
        let se = l.movement_index(Arm::South, Arm::East).unwrap();
        let we = l.movement_index(Arm::West, Arm::East).unwrap();
        assert!(l.gives_way(se, we));
        assert!(!l.gives_way(we, se));
        assert!(l.signals.is_none());
    }

    #[test]
    fn signals_alternate_and_the_next_green_is_found() {
        let s = SignalTiming::default();
        assert_eq!(s.light(Arm::West, 1.0), Light::Green);
        assert_eq!(s.light(Arm::West, 26.0), Light::Yellow);
        assert_eq!(s.light(Arm::West, 29.0), Light::Red);
        assert_eq!(s.light(Arm::North, 1.0), Light::Red);
        assert_eq!(s.light(Arm::North, 31.0), Light::Green);
        assert_eq!(s.next_green(Arm::North, 1.0), 30.0);
        assert_eq!(s.next_green(Arm::West, 0.0), 0.0);
        assert_eq!(s.next_green(Arm::West, 0.5), 60.0);
        assert_eq!(s.green_left(Arm::West, 5.0), 20.0);
    }
}

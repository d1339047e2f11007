//! The agent's logic, without IO: perception in, frames out at up to 10 Hz, clock sync, alerts
//! in. Time is always an argument (`now_local_us`, the vehicle's own clock in µs).

use protocol::{
    Alert, ClockEstimate, ClockEstimator, ClockReply, ClockRequest, ClockSample, DecodeError,
    EgoSi, EgoState, EncodeError, FeatureFrame, Message, ObjectSi, PerceivedObject,
    ValidationError, VehicleId, MAX_OBJECTS,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One perception cycle: the vehicle's pose and the objects it sees. This is also one line of
/// the binary's NDJSON input (see docs/operations.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Perception {
    /// Capture time on the vehicle's clock, µs; the time of the push when absent.
    #[serde(default)]
    pub capture_local_us: Option<i64>,
    pub ego: EgoSi,
    #[serde(default)]
    pub objects: Vec<ObjectReport>,
}

/// An object as the perception stack reports it: its own id (any number, stable while it
/// tracks the object) and the object in SI units, relative to the vehicle in ENU axes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ObjectReport {
    pub id: u64,
    #[serde(flatten)]
    pub object: ObjectSi,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    #[error("perception refused: {0}")]
    Invalid(#[from] ValidationError),
    #[error("perception refused: {0}")]
    Encode(#[from] EncodeError),
    #[error("perception refused: {count} objects exceed the frame maximum of {max}")]
    TooManyObjects { count: usize, max: usize },
    #[error("perception refused: object id {0} appears twice")]
    DuplicateObjectId(u64),
}

/// An alert as the vehicle received it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedAlert {
    pub alert: Alert,
    /// Receipt time in the edge's time base (vehicle clock + offset estimate), µs.
    pub received_edge_us: i64,
    /// Receipt time minus the capture time of the frame that triggered the alert, µs.
    pub latency_us: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentStats {
    pub perceptions: u64,
    pub perceptions_refused: u64,
    /// Perceptions replaced by a newer one before the rate limit let them out.
    pub perceptions_superseded: u64,
    pub frames_sent: u64,
    pub frame_bytes: u64,
    /// Bytes of frames minus their headers, and the objects they carried.
    pub object_bytes: u64,
    pub objects_sent: u64,
    pub clock_samples: u64,
    pub clock_replies_refused: u64,
    pub alerts_received: u64,
    pub alerts_refused: u64,
}

/// Compact wire ids for the perception stack's object ids. Ids under 128 cost one byte on the
/// wire, so ids are recycled; an id is reused only after it has been unused for `quiet_us`, so
/// that the edge does not take a new object for the old one.
#[derive(Debug, Default)]
struct IdMap {
    by_external: BTreeMap<u64, u16>,
    /// Per compact id: the external id and when it was last used.
    slots: Vec<Option<(u64, i64)>>,
    quiet_us: i64,
}

impl IdMap {
    fn assign(&mut self, external: &[u64], now_us: i64) -> Vec<u16> {
        // Forget mappings that have been quiet long enough.
        let quiet = self.quiet_us;
        for slot in self.slots.iter_mut() {
            if let Some((ext, last)) = *slot {
                if now_us - last >= quiet && !external.contains(&ext) {
                    self.by_external.remove(&ext);
                    *slot = None;
                }
            }
        }
        external
            .iter()
            .map(|&ext| {
                let id = match self.by_external.get(&ext) {
                    Some(&id) => id,
                    None => {
                        let id = match self.slots.iter().position(Option::is_none) {
                            Some(free) => free,
                            None => {
                                self.slots.push(None);
                                self.slots.len() - 1
                            }
                        } as u16;
                        self.by_external.insert(ext, id);
                        id
                    }
                };
                self.slots[id as usize] = Some((ext, now_us));
                id
            })
            .collect()
    }
}

/// The frame rate limit: a token bucket that refills one frame per `min_interval_us` and holds
/// at most `BURST` frames, so a 10 Hz producer with timer jitter is never held back (a plain
/// "100 ms since the last send" rule would defer every frame that comes a little early and let
/// the delay creep up), while the long-run rate stays at most 10 Hz.
const BURST: f64 = 2.0;

pub struct AgentCore {
    vehicle: VehicleId,
    min_interval_us: i64,
    seq: u32,
    clock: ClockEstimator,
    /// Tokens in the bucket at `bucket_at_us`.
    tokens: f64,
    bucket_at_us: Option<i64>,
    pending: Option<(i64, FeatureFrame)>,
    ids: IdMap,
    stats: AgentStats,
}

impl AgentCore {
    /// `min_interval_us` is the least time between two frames (100 ms for 10 Hz).
    pub fn new(vehicle: VehicleId, min_interval_us: i64) -> Self {
        Self {
            vehicle,
            min_interval_us,
            seq: 0,
            clock: ClockEstimator::default(),
            tokens: BURST,
            bucket_at_us: None,
            pending: None,
            ids: IdMap {
                quiet_us: 2_000_000,
                ..Default::default()
            },
            stats: AgentStats::default(),
        }
    }

    pub fn vehicle(&self) -> VehicleId {
        self.vehicle
    }

    pub fn stats(&self) -> &AgentStats {
        &self.stats
    }

    /// Quantises and checks a perception cycle and makes it the next frame to send. A pending
    /// frame not yet sent is replaced (and counted as superseded).
    pub fn handle_perception(
        &mut self,
        now_local_us: i64,
        p: &Perception,
    ) -> Result<(), AgentError> {
        self.stats.perceptions += 1;
        let result = self.build(now_local_us, p);
        match result {
            Ok((capture, frame)) => {
                if self.pending.replace((capture, frame)).is_some() {
                    self.stats.perceptions_superseded += 1;
                }
                Ok(())
            }
            Err(e) => {
                self.stats.perceptions_refused += 1;
                Err(e)
            }
        }
    }

    fn build(
        &mut self,
        now_local_us: i64,
        p: &Perception,
    ) -> Result<(i64, FeatureFrame), AgentError> {
        if p.objects.len() > MAX_OBJECTS {
            return Err(AgentError::TooManyObjects {
                count: p.objects.len(),
                max: MAX_OBJECTS,
            });
        }
        let external: Vec<u64> = p.objects.iter().map(|o| o.id).collect();
        let mut sorted = external.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(AgentError::DuplicateObjectId(w[0]));
        }
        let ego = EgoState::from_si(&p.ego)?;
        let mut objects = p
            .objects
            .iter()
            .map(|o| PerceivedObject::from_si(0, &o.object))
            .collect::<Result<Vec<_>, _>>()?;
        // Check everything before assigning ids, so a refused perception leaves no trace. The
        // wire ids are all 0 here, so objects are checked one at a time (the duplicate-id check
        // is the one on the external ids above).
        let mut frame = FeatureFrame {
            vehicle: self.vehicle,
            seq: 0,
            capture_us: 0,
            clock_uncertainty_us: 0,
            ego,
            objects: vec![],
        };
        protocol::validate::check_content(&frame)?;
        for o in &objects {
            frame.objects = vec![*o];
            protocol::validate::check_content(&frame)?;
        }
        let capture = p.capture_local_us.unwrap_or(now_local_us);
        for (o, id) in objects.iter_mut().zip(self.ids.assign(&external, capture)) {
            o.id = id;
        }
        frame.objects = objects;
        Ok((capture, frame))
    }

    fn tokens_at(&self, now_local_us: i64) -> f64 {
        match self.bucket_at_us {
            None => BURST,
            Some(at) => (self.tokens
                + (now_local_us - at).max(0) as f64 / self.min_interval_us.max(1) as f64)
                .min(BURST),
        }
    }

    /// When the pending frame may go out, if there is one: now, or when the rate limit allows.
    pub fn next_frame_at(&self) -> Option<i64> {
        self.pending.as_ref()?;
        Some(match self.bucket_at_us {
            None => i64::MIN,
            Some(at) if self.tokens >= 1.0 => at,
            Some(at) => at + ((1.0 - self.tokens) * self.min_interval_us as f64).ceil() as i64,
        })
    }

    /// The pending frame, stamped in edge time and encoded, if the rate limit allows it now and
    /// the clock offset is known (frames are never stamped with a guess).
    pub fn poll_frame(&mut self, now_local_us: i64) -> Option<Vec<u8>> {
        self.pending.as_ref()?;
        let tokens = self.tokens_at(now_local_us);
        if tokens < 1.0 {
            return None;
        }
        let estimate = self.clock_estimate(now_local_us)?;
        let (capture_local, mut frame) = self.pending.take()?;
        frame.seq = self.seq;
        frame.capture_us = capture_local + estimate.offset_us;
        frame.clock_uncertainty_us = estimate.uncertainty_us;
        let bytes = frame.encode().ok()?;
        let n_objects = frame.objects.len();
        frame.objects.clear();
        let header = frame.encode().map(|h| h.len()).unwrap_or(0);
        self.seq = self.seq.wrapping_add(1);
        self.tokens = tokens - 1.0;
        self.bucket_at_us = Some(now_local_us);
        self.stats.frames_sent += 1;
        self.stats.frame_bytes += bytes.len() as u64;
        self.stats.object_bytes += (bytes.len() - header) as u64;
        self.stats.objects_sent += n_objects as u64;
        Some(bytes)
    }

    pub fn clock_request(&self, now_local_us: i64) -> Vec<u8> {
        ClockRequest {
            t1_us: now_local_us,
        }
        .encode()
        .expect("a clock request always encodes")
    }

    /// Feeds the edge's reply to a clock request received at `now_local_us`. `Ok(true)` when
    /// it gave a sample, `Ok(false)` when its timestamps are inconsistent (a negative network
    /// delay: counted and ignored).
    pub fn handle_clock_reply(
        &mut self,
        now_local_us: i64,
        bytes: &[u8],
    ) -> Result<bool, DecodeError> {
        let reply =
            ClockReply::decode(bytes).inspect_err(|_| self.stats.clock_replies_refused += 1)?;
        match ClockSample::from_exchange(&reply, now_local_us) {
            Some(s) => {
                self.clock.add(s);
                self.stats.clock_samples += 1;
                Ok(true)
            }
            None => {
                self.stats.clock_replies_refused += 1;
                Ok(false)
            }
        }
    }

    pub fn clock_estimate(&self, now_local_us: i64) -> Option<ClockEstimate> {
        self.clock.estimate(now_local_us)
    }

    /// The edge time matching `now_local_us`, if the offset is known.
    pub fn edge_time(&self, now_local_us: i64) -> Option<i64> {
        self.clock_estimate(now_local_us)
            .map(|e| now_local_us + e.offset_us)
    }

    pub fn handle_alert(
        &mut self,
        now_local_us: i64,
        bytes: &[u8],
    ) -> Result<ReceivedAlert, DecodeError> {
        let alert = Alert::decode(bytes).inspect_err(|_| self.stats.alerts_refused += 1)?;
        self.stats.alerts_received += 1;
        let received_edge_us = self.edge_time(now_local_us).unwrap_or(now_local_us);
        Ok(ReceivedAlert {
            latency_us: received_edge_us - alert.trigger_capture_us,
            received_edge_us,
            alert,
        })
    }
}

#[cfg(test)]
mod tests;

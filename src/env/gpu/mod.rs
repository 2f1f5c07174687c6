//! The GPU backends: the environment step as CUDA kernels (`--backend cuda`, through
//! cudarc) or WGSL compute shaders (`--backend wgpu`), one thread per environment; and
//! the CUDA kernels' source compiled for the host CPU (`--backend cuda-host`, [`host`]),
//! which lets the conformance tests execute it without a GPU.
//!
//! [`GpuEnvs`] is the host side they share; a [`Device`] (in [`cuda`], [`wgpu`] or [`host`]) owns
//! the buffers and launches the four entry points of the kernel source (`reset_all`,
//! `observe`, `step`, and `scatter`, which puts a top-up's new queue entries in place). The kernels port [`super::exec`] and [`super::cpu`]'s step phase
//! by phase in f64/i64, and the conformance tests (`tests/gpu_conformance.rs`) compare
//! every output with the CPU engine on every backend present.
//!
//! # What lives on the device
//! - The environment state ([`layout`]: three field-major buffers by element type) and
//!   the rolling-Sharpe windows.
//! - **Day slots**: `slot_rows` bars and feature rows per slot, a [`layout::SlotInfo`] and
//!   its halts. A day is uploaded into a free slot when an episode on it is queued, and
//!   the slot is freed when no environment runs or waits for an episode on it. Uploads
//!   happen between steps, never inside one. A universe with more days than slots (and
//!   more than the environments' running and queued episodes could need at once) is
//!   drawn **day-major**: the source draws among a window of days that moves through all
//!   of them (`EpisodeSource::limit_days`, see `limit_days` here for its size), so days
//!   stream through the slots, each serving many episodes while it is resident.
//! - **Episode queues**: `queue_len` (slot, start row) entries per environment, drawn on
//!   the host from the [`EpisodeSource`] in environment order. An environment whose
//!   episode ends takes its next entry *in the same kernel* (same-step auto-reset), so a
//!   step needs no host round trip. Each step takes at most one entry per environment.
//! - **Episode log**: finished episodes' summaries, appended by the kernel to a ring of
//!   `log_cap` records (a power of two) with an atomic counter, read by the host a
//!   top-up behind (and at once by [`GpuEnvs::drain_finished`]), sorted into the CPU
//!   engine's order (step, then environment). A record names its day by the upload's
//!   serial number ([`layout::SlotInfo::day`]), so it still reads right after its slot
//!   was given to another day.
//!
//! # Top-ups
//! The host never waits for the device while stepping. Every `P = queue_len / 2` steps a
//! top-up takes the **readback the previous top-up started** (the log count, every
//! environment's queue head, and the log records up to the count before: copied behind
//! the steps submitted then, and long arrived), takes the entries and records it names,
//! draws episodes to fill each queue to `queue_len` entries past those heads, uploads
//! only the new entries (and new days) and starts the next readback. The heads are a
//! period old: by the top-up the device may have taken `P` more entries, and before the
//! next top-up `P` more again, so `2P ≤ queue_len` entries past the old heads are
//! always there. A slot is reused only when no entry past the old heads needs its day,
//! and the steps since take entries only from there. The schedule depends on the step
//! count alone, so a run draws the same episodes on every backend and after a resume.
//!
//! # Snapshots
//! [`GpuEnvs::save_state`] writes everything that decides future steps, as
//! [`super::CpuEnvs::save_state`] does for the CPU engine: a length-prefixed JSON header
//! (sizes, counters, the episode source's state, the steps left before the next top-up,
//! and per environment the day of its running episode and its queued (day, start row)
//! entries in order as the host sees them, with how many of them the device has taken
//! since and had taken by the readback in flight) followed by the three state buffers as
//! the device holds them. The
//! source was drawn ahead of the queues, so its state and the queue contents together
//! continue the same episode sequence, and the queues are topped up at the same steps as
//! in an uninterrupted run (which a source with one shared stream needs). Days are named
//! by (symbol, date, bar length), never by slot: [`GpuEnvs::load_state`] uploads them into
//! fresh slots and renumbers the queues, so a snapshot resumes on any backend and after
//! any slot history. The finished-episode log is not part of it (saving drains the
//! device's log into [`GpuEnvs::drain_finished`]'s list).
//!
//! Episode sources whose draws depend only on the environment and how many episodes it
//! drew before (the built-in [`super::StartTimes`]) give every backend the same episodes;
//! a source with one shared random stream (the scanner's curriculum sampler) is drawn in
//! another order here than on the CPU, reproducibly for a given backend.

pub mod host;
pub mod layout;
pub mod ptx;

#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "cuda")]
pub mod nvrtc;
#[cfg(feature = "wgpu")]
pub mod wgpu;

use super::cpu::{LOG_CAP, REASONS, check_actions, check_day, check_out};
use super::day::DayData;
use super::episodes::EpisodeSource;
use super::params::{Commission, EnvParams};
use super::{EpisodeStats, StepOut};
use crate::error::{Error, Result};
use layout::{LogRec, Params, SlotInfo};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Which GPU API steps the environments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuApi {
    Cuda,
    Wgpu,
    /// The CUDA kernels' source compiled for the host CPU ([`host`]): for the
    /// conformance tests and measuring the host side, not for speed.
    #[serde(rename = "cuda-host")]
    CudaHost,
}

impl GpuApi {
    pub fn name(self) -> &'static str {
        match self {
            GpuApi::Cuda => "cuda",
            GpuApi::Wgpu => "wgpu",
            GpuApi::CudaHost => "cuda-host",
        }
    }
}

/// The buffers a [`Device`] holds, in binding order (the WGSL `@binding` numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buf {
    Params = 0,
    ActionTable,
    Bars,
    Feats,
    Slots,
    Halts,
    StateU32,
    StateI64,
    StateF64,
    Actions,
    Obs,
    Rewards,
    Flags,
    Queue,
    Log,
    Ctl,
}

pub const N_BUFS: usize = 16;

impl Buf {
    pub const ALL: [Buf; N_BUFS] = [
        Buf::Params,
        Buf::ActionTable,
        Buf::Bars,
        Buf::Feats,
        Buf::Slots,
        Buf::Halts,
        Buf::StateU32,
        Buf::StateI64,
        Buf::StateF64,
        Buf::Actions,
        Buf::Obs,
        Buf::Rewards,
        Buf::Flags,
        Buf::Queue,
        Buf::Log,
        Buf::Ctl,
    ];

    /// Whether kernels only read it.
    pub fn read_only(self) -> bool {
        matches!(
            self,
            Buf::Params
                | Buf::ActionTable
                | Buf::Bars
                | Buf::Feats
                | Buf::Slots
                | Buf::Halts
                | Buf::Actions
        )
    }
}

/// The kernel entry points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Every environment takes its first queued episode and writes its observation.
    ResetAll = 0,
    /// Every environment writes its current observation.
    Observe,
    /// One step of every environment.
    Step,
    /// Copies the host's new queue entries (the patch area after the queues) into the
    /// queues: a top-up uploads only what is new.
    Scatter,
}

impl Entry {
    /// Every entry, in the order of their indices (`entry as usize`).
    pub const ALL: [Entry; 4] = [Entry::ResetAll, Entry::Observe, Entry::Step, Entry::Scatter];

    pub fn name(self) -> &'static str {
        match self {
            Entry::ResetAll => "reset_all",
            Entry::Observe => "observe",
            Entry::Step => "step",
            Entry::Scatter => "scatter",
        }
    }
}

/// What a device can hold, asked before anything is allocated.
#[derive(Clone, Copy, Debug)]
pub struct Capacity {
    /// Largest single buffer, bytes.
    pub max_buffer: u64,
    /// Memory free for all buffers together, bytes, where the API reports it.
    pub free: Option<u64>,
}

/// One GPU API's side of the backend: buffers, copies and launches, in submission order
/// on one queue / stream.
pub trait Device: Send {
    /// The device and API, e.g. "NVIDIA H100 80GB HBM3 (CUDA 13.0)".
    fn describe(&self) -> String;
    fn capacity(&self) -> Capacity;
    /// Allocates every buffer (`sizes[b]` bytes for `Buf::ALL[b]`, zeroed) and binds
    /// them to the kernels.
    fn alloc(&mut self, sizes: &[u64; N_BUFS], params: &Params) -> Result<()>;
    /// Copies `bytes` to `buf` at `offset`, ordered after earlier work.
    fn write(&mut self, buf: Buf, offset: u64, bytes: &[u8]) -> Result<()>;
    /// Copies from `buf` at `offset` into `out`, after all earlier work finished.
    fn read(&mut self, buf: Buf, offset: u64, out: &mut [u8]) -> Result<()>;
    /// Starts copying `regions` (buffer, offset, bytes; each a multiple of 4 bytes at a
    /// multiple of 4), one after the other, into host memory, ordered after the work
    /// submitted so far, and returns without waiting. One copy is in flight at a time:
    /// [`Device::read_finish`] takes it before the next starts.
    fn read_start(&mut self, regions: &[(Buf, u64, usize)]) -> Result<()>;
    /// The bytes of the copy [`Device::read_start`] started, into `out` (resized to fit),
    /// and whether the host had to wait for them (`false`: the copy had finished).
    fn read_finish(&mut self, out: &mut Vec<u8>) -> Result<bool>;
    /// Launches `entry` over every environment; `tick` is the host's step counter, a
    /// kernel argument (no upload).
    fn launch(&mut self, entry: Entry, tick: u32) -> Result<()>;
    /// Waits until all submitted work is done.
    fn sync(&mut self) -> Result<()>;
    /// The CUDA device address of `buf`, for a learner on the same device that reads and
    /// writes it in place (`None`: not CUDA memory).
    fn device_ptr(&self, _buf: Buf) -> Option<u64> {
        None
    }
}

/// Opens a device of `api`: a clear error when the backend was not compiled in or no
/// driver / adapter exists.
pub fn open_device(api: GpuApi) -> Result<Box<dyn Device>> {
    match api {
        #[cfg(feature = "cuda")]
        GpuApi::Cuda => Ok(Box::new(cuda::CudaDevice::open()?)),
        #[cfg(not(feature = "cuda"))]
        GpuApi::Cuda => Err(Error::Device(
            "--backend cuda: this binary was not compiled with the cuda feature; build with `cargo build --release --features cuda`".into(),
        )),
        #[cfg(feature = "wgpu")]
        GpuApi::Wgpu => Ok(Box::new(wgpu::WgpuDevice::open()?)),
        #[cfg(not(feature = "wgpu"))]
        GpuApi::Wgpu => Err(Error::Device(
            "--backend wgpu: this binary was not compiled with the wgpu feature; build with `cargo build --release --features wgpu`".into(),
        )),
        GpuApi::CudaHost => Ok(Box::new(host::HostCudaDevice::open()?)),
    }
}

/// Sizes of the device-side structures.
#[derive(Clone, Copy, Debug, Default)]
pub struct GpuOptions {
    /// Episodes queued per environment (default 32).
    pub queue_len: Option<usize>,
    /// Bars per day slot (default: the longest day the episode source can hand out, or
    /// of the first draws).
    pub slot_rows: Option<usize>,
    /// Day slots (default: twice the distinct days of the first draws, plus 16, as far as
    /// the device's largest buffer allows). Fewer than the universe's days: the days are
    /// drawn day-major through them (module docs, "Day slots").
    pub day_slots: Option<usize>,
}

/// Halts one day slot holds.
const MAX_HALTS: usize = 32;
/// Threads per block / invocations per workgroup (the WGSL `@workgroup_size`).
pub const BLOCK: u32 = 64;
const NO_SLOT: u32 = u32::MAX;

/// N environments stepped on a GPU.
pub struct GpuEnvs {
    api: GpuApi,
    dev: Metered,
    params: Arc<EnvParams>,
    n: usize,
    q: usize,
    source: Box<dyn EpisodeSource>,
    slot_rows: usize,
    slot_day: Vec<Option<Arc<DayData>>>,
    slot_refs: Vec<u32>,
    /// Which slot holds a day, by (symbol, date, bar length): one symbol-day may come in
    /// several bar sizes.
    slot_of: HashMap<(String, chrono::NaiveDate, u32), u32>,
    /// Per environment: the slot of the running episode and of the queued ones.
    cur: Vec<u32>,
    queued: Vec<VecDeque<u32>>,
    /// Queue entries taken by the device / written by the host, per environment.
    head: Vec<u32>,
    tail: Vec<u32>,
    queue_host: Vec<u32>,
    /// Steps between top-ups (`queue_len / 2`: module docs, "Top-ups").
    period: usize,
    /// Steps before the next top-up.
    refill_in: usize,
    tick: u32,
    /// Records the device's log ring holds (a power of two).
    log_cap: usize,
    /// Log index up to which the host has taken the records (the log count, wrapping).
    log_read: u32,
    /// The latest log count a readback brought.
    log_known: u32,
    /// The readback the last top-up started, for the next one.
    pending: Pending,
    /// Scratch for readback bytes.
    readback_bytes: Vec<u8>,
    /// The day each upload into a slot brought, by [`SlotInfo::day`], while a log record
    /// may still name it; `slot_upload[s]` is slot `s`'s latest upload.
    upload_day: HashMap<u32, Arc<DayData>>,
    slot_upload: Vec<u32>,
    next_upload: u32,
    /// Uploads whose slot was reused, with the log count below which every record of
    /// theirs lies: forgotten once the host has read the log that far.
    retired: VecDeque<(u32, u32)>,
    /// The log count of the readback the current top-up works from (the bound of the
    /// uploads it retires).
    retire_bound: u32,
    finished: Vec<EpisodeStats>,
    dropped: u64,
    episodes: u64,
    flags: Vec<u32>,
    /// The final observations of the episodes truncated in the latest [`GpuEnvs::step`].
    final_host: Vec<f32>,
    /// A top-up's new queue entries for [`Entry::Scatter`]: a count, then (entry, slot,
    /// start row) triples.
    patch: Vec<u32>,
    /// The actions padded to whole words, when `n` is not a multiple of 4.
    actions_padded: Vec<u8>,
}

/// The top-up readback: started by one top-up, taken by the next (module docs, "Top-ups").
enum Pending {
    /// None started (only while the environments are being built or restored).
    None,
    /// On its way from the device: the log count, the queue heads, then `recs` log
    /// records from log index `recs_from`.
    InFlight { recs_from: u32, recs: u32 },
    /// Taken early (by a snapshot) or restored from one.
    Ready(Readback),
}

/// What a copy of the log ring adds to what the host has read (log indices wrap: they are
/// the device's 32-bit count).
#[derive(Debug, PartialEq, Eq)]
struct LogSpan {
    /// How far the host's read position moves (records taken and records lost).
    advance: u32,
    /// Records lost: overwritten before any read reached them.
    lost: u32,
    /// The copied records the host takes: not read before, not overwritten.
    intact: std::ops::Range<usize>,
}

impl LogSpan {
    /// The span of `len` records copied from log index `from`, when the device's count
    /// was `count`, for a host that has read up to `read`, with a ring of `cap` records.
    fn of(read: u32, from: u32, len: u32, count: u32, cap: u32) -> LogSpan {
        let ahead = |a: u32, b: u32| a.wrapping_sub(b) as i32 > 0;
        let end = from.wrapping_add(len);
        if !ahead(end, read) {
            // Nothing the host has not read already.
            return LogSpan {
                advance: 0,
                lost: 0,
                intact: 0..0,
            };
        }
        // Records before the copy's start that the host never read were overwritten.
        let gap = if ahead(from, read) {
            from.wrapping_sub(read)
        } else {
            0
        };
        // Records the host read already (by a blocking drain) are skipped.
        let skip = if ahead(read, from) {
            read.wrapping_sub(from)
        } else {
            0
        };
        // Index `i` was still in the ring when the count was `count` if `count - i <= cap`:
        // the records older than `count - cap` at the copy's start were overwritten.
        let oldest = count.wrapping_sub(cap);
        let overwritten = if ahead(oldest, from) {
            oldest.wrapping_sub(from).min(len)
        } else {
            0
        };
        let first = skip.max(overwritten);
        LogSpan {
            advance: end.wrapping_sub(read),
            lost: gap + overwritten.saturating_sub(skip),
            intact: first as usize..len as usize,
        }
    }
}

/// What a top-up readback brings: the device's log count and queue heads at the step it
/// was started, and the log records it copied.
struct Readback {
    count: u32,
    heads: Vec<u32>,
    recs_from: u32,
    recs: Vec<LogRec>,
}

/// What the host did for the device, counted here in the orchestrator, around every
/// backend's [`Device`], so the figures mean the same on each (`bench env` reports them).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Meter {
    /// Batch steps submitted.
    pub steps: u64,
    /// Host time spent inside the step calls (top-ups included), ns. On `cuda-host` the
    /// kernels run inside the launch, so it includes them.
    pub host_ns: u64,
    /// Times the host waited for the device: every blocking read (it waits for all
    /// earlier work), every sync, and every top-up readback that had not arrived when
    /// the host took it.
    pub syncs: u64,
    /// Bytes copied host to device.
    pub h2d_bytes: u64,
}

/// A [`Device`] with its [`Meter`].
struct Metered {
    dev: Box<dyn Device>,
    meter: Meter,
}

impl Metered {
    fn count_step(&mut self, started: std::time::Instant) {
        self.meter.steps += 1;
        self.meter.host_ns += started.elapsed().as_nanos() as u64;
    }
}

impl Device for Metered {
    fn describe(&self) -> String {
        self.dev.describe()
    }
    fn capacity(&self) -> Capacity {
        self.dev.capacity()
    }
    fn alloc(&mut self, sizes: &[u64; N_BUFS], params: &Params) -> Result<()> {
        self.dev.alloc(sizes, params)
    }
    fn write(&mut self, buf: Buf, offset: u64, bytes: &[u8]) -> Result<()> {
        self.meter.h2d_bytes += bytes.len() as u64;
        self.dev.write(buf, offset, bytes)
    }
    fn read(&mut self, buf: Buf, offset: u64, out: &mut [u8]) -> Result<()> {
        self.meter.syncs += 1;
        self.dev.read(buf, offset, out)
    }
    fn read_start(&mut self, regions: &[(Buf, u64, usize)]) -> Result<()> {
        self.dev.read_start(regions)
    }
    fn read_finish(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        let waited = self.dev.read_finish(out)?;
        self.meter.syncs += u64::from(waited);
        Ok(waited)
    }
    fn launch(&mut self, entry: Entry, tick: u32) -> Result<()> {
        self.dev.launch(entry, tick)
    }
    fn sync(&mut self) -> Result<()> {
        self.meter.syncs += 1;
        self.dev.sync()
    }
    fn device_ptr(&self, buf: Buf) -> Option<u64> {
        self.dev.device_ptr(buf)
    }
}

/// Words of the queue buffer: `n·q` (day slot, start row) pairs, then the patch area
/// `Entry::Scatter` reads: a count and up to `n·q` (entry, slot, start row) triples.
fn queue_words(n: usize, q: usize) -> usize {
    2 * n * q + 1 + 3 * n * q
}

/// Bytes one day slot takes in its largest buffer (bars or features).
fn slot_bytes(p: &EnvParams, rows: usize) -> u64 {
    (rows * std::mem::size_of::<super::BarRec>()).max(rows * 4 * p.feature_cols.len()) as u64
}

/// Sets a day window on `source` when its days may not fit the day slots: the days it
/// can hand out are more than the slots, and so are the days `n` environments with `q`
/// queued episodes each could need at once. The window holds half the slots; the other
/// half is room for the days that left it and still have running or queued episodes.
/// [`GpuEnvs`] moves it at a top-up when the day coming in has a free slot
/// (`move_window`), so the days in use never exceed the slots. Returns whether a window
/// was set (a source that cannot limit its days, such as the scanner's sampler, draws as
/// before and may find every slot taken).
fn limit_days(
    dev: &dyn Device,
    params: &EnvParams,
    source: &mut dyn EpisodeSource,
    opts: &GpuOptions,
    (n, q): (usize, usize),
) -> Result<bool> {
    let (Some(rows), Some(days)) = (opts.slot_rows.or(source.max_day_rows()), source.num_days())
    else {
        return Ok(false);
    };
    // As many as the default in `GpuEnvs::new` could be (it counts the days of the first
    // draws, at most `days`).
    let fit = (dev.capacity().max_buffer / slot_bytes(params, rows).max(1)) as usize;
    let slots = opts.day_slots.unwrap_or((2 * days + 16).min(fit)).max(1);
    if days.min(n.saturating_mul(q + 1)) <= slots {
        return Ok(false);
    }
    source.limit_days((slots / 2).max(1))
}

/// Bytes of one environment's share of every per-environment buffer.
fn bytes_per_env(p: &EnvParams, q: usize) -> u64 {
    let (nu, ni, nf) = layout::class_counts();
    (4 * nu + 8 * ni + 8 * (nf + ring_width(p)) + 1 + 2 * 4 * p.obs_dim() + 4 + 4 + 20 * q) as u64
}

/// Rolling-Sharpe window per environment (0 when the term is off).
fn ring_width(p: &EnvParams) -> usize {
    if p.uses_sharpe() {
        p.sharpe_window as usize
    } else {
        0
    }
}

/// A day as a snapshot names it: symbol, date, bar length in ms.
type DayKey = (String, chrono::NaiveDate, u32);

/// What a [`GpuEnvs::save_state`] snapshot records besides the state buffers.
#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotMeta {
    /// [`layout::LAYOUT_VERSION`] of the state buffers.
    layout: u32,
    envs: usize,
    obs_dim: usize,
    ring_w: usize,
    queue_len: usize,
    tick: u32,
    /// Steps before the next top-up: restored, so the source is drawn at the same steps
    /// as in a run that was never interrupted.
    refill_in: usize,
    episodes: u64,
    dropped: u64,
    source: serde_json::Value,
    /// Every day a running or queued episode is on, each once.
    days: Vec<DayKey>,
    /// Per environment: the day (index into `days`) of its running episode.
    running: Vec<u32>,
    /// Per environment: its queued episodes, next first, as (index into `days`, start row).
    /// `running` and `queued` are the host's view, as of the last top-up's readback.
    queued: Vec<Vec<(u32, u32)>>,
    /// Per environment: how many of `queued` the device has taken since (the last is the
    /// episode it runs).
    taken: Vec<u32>,
    /// Per environment: how many of `queued` the device had taken when the pending
    /// readback was started (the next top-up fills the queue to `queue_len` past them).
    pending: Vec<u32>,
}

/// A snapshot's header: its length and content.
fn snapshot_meta(bytes: &[u8]) -> Result<(usize, SnapshotMeta)> {
    let bad = |what: String| Error::Data(format!("environment snapshot: {what}"));
    let len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .ok_or_else(|| bad("truncated header".into()))?;
    let json = bytes
        .get(8..8usize.saturating_add(len))
        .ok_or_else(|| bad("truncated header".into()))?;
    let meta = serde_json::from_slice(json).map_err(|e| {
        bad(format!(
            "unreadable header (not a GPU backend snapshot?): {e}"
        ))
    })?;
    Ok((len, meta))
}

impl GpuEnvs {
    /// `n` environments on a device of `api`, each given its first episode by `source`.
    pub fn new(
        api: GpuApi,
        params: Arc<EnvParams>,
        n: usize,
        source: Box<dyn EpisodeSource>,
        opts: GpuOptions,
    ) -> Result<GpuEnvs> {
        let dev = open_device(api)?;
        GpuEnvs::with_device(api, dev, params, n, source, opts)
    }

    fn with_device(
        api: GpuApi,
        mut dev: Box<dyn Device>,
        params: Arc<EnvParams>,
        n: usize,
        mut source: Box<dyn EpisodeSource>,
        opts: GpuOptions,
    ) -> Result<GpuEnvs> {
        if n == 0 {
            return Err(Error::Usage(
                "the number of environments must be at least 1".into(),
            ));
        }
        let q = opts.queue_len.unwrap_or(32).clamp(2, 1024);
        // The per-environment buffers first: too many environments is refused before
        // anything is drawn or allocated, on the device (saying how many fit), then on the
        // host (outputs, queued episodes).
        let sizes = buffer_sizes(&params, n, q, (0, 0), log_capacity(n));
        check_capacity(&*dev, &sizes, &params, q, n)?;
        super::cpu::check_memory(n, &params)?;
        crate::util::mem::check(
            &format!("{n} environments × {q} queued episodes"),
            crate::util::mem::product(&[n, q], std::mem::size_of::<super::Episode>()),
            "use fewer environments (--envs, train.num_envs)",
        )?;
        // A universe that may not fit the device's day slots is drawn day-major: the
        // source draws among a window of days that moves through all of them (module docs,
        // "Day slots").
        limit_days(&*dev, &params, &mut *source, &opts, (n, q))?;
        // The first draws, in environment order: they decide the slot size and count.
        let mut first: Vec<Vec<super::Episode>> = Vec::with_capacity(n);
        for i in 0..n {
            let mut eps = Vec::with_capacity(q);
            for _ in 0..q {
                let ep = source.next_episode(i)?;
                ep.check()?;
                check_day(&params, &ep.day)?;
                eps.push(ep);
            }
            first.push(eps);
        }
        let drawn_max = first.iter().flatten().map(|e| e.day.rows()).max();
        let slot_rows = opts
            .slot_rows
            .or(source.max_day_rows())
            .or(drawn_max)
            .unwrap_or(2)
            .max(2);
        let mut distinct: Vec<(&str, chrono::NaiveDate)> = first
            .iter()
            .flatten()
            .map(|e| (e.day.symbol.as_str(), e.day.date))
            .collect();
        distinct.sort_unstable();
        distinct.dedup();
        let fit = (dev.capacity().max_buffer / slot_bytes(&params, slot_rows).max(1)) as usize;
        let day_slots = opts
            .day_slots
            .unwrap_or((2 * distinct.len() + 16).min(fit))
            .max(1);
        let log_cap = log_capacity(n);
        let sizes = buffer_sizes(&params, n, q, (slot_rows, day_slots), log_cap);
        check_capacity(&*dev, &sizes, &params, q, n)?;
        let p = device_params(&params, n, q, (slot_rows, day_slots), log_cap)?;
        dev.alloc(&sizes, &p)?;
        dev.write(Buf::Params, 0, bytemuck::bytes_of(&p))?;
        dev.write(Buf::ActionTable, 0, bytemuck::cast_slice(&params.actions))?;
        let obs_dim = params.obs_dim();
        let mut envs = GpuEnvs {
            api,
            dev: Metered {
                dev,
                meter: Meter::default(),
            },
            params,
            n,
            q,
            source,
            slot_rows,
            slot_day: vec![None; day_slots],
            slot_refs: vec![0; day_slots],
            slot_of: HashMap::new(),
            cur: vec![NO_SLOT; n],
            queued: vec![VecDeque::with_capacity(q); n],
            head: vec![0; n],
            tail: vec![0; n],
            queue_host: vec![0; 2 * q * n],
            period: q / 2,
            refill_in: 0,
            tick: 0,
            log_cap,
            log_read: 0,
            log_known: 0,
            pending: Pending::None,
            readback_bytes: Vec::new(),
            upload_day: HashMap::new(),
            slot_upload: vec![0; day_slots],
            next_upload: 0,
            retired: VecDeque::new(),
            retire_bound: 0,
            finished: Vec::new(),
            dropped: 0,
            episodes: 0,
            flags: vec![0; n],
            final_host: vec![0.0; n * obs_dim],
            patch: Vec::new(),
            actions_padded: Vec::new(),
        };
        for (i, eps) in first.into_iter().enumerate() {
            for ep in eps {
                envs.enqueue(i, ep.day, ep.start_row)?;
            }
        }
        envs.upload_queues(0..n)?;
        envs.dev.launch(Entry::ResetAll, 0)?;
        for i in 0..n {
            envs.take_entry(i);
        }
        envs.start_readback()?;
        envs.refill_in = envs.period;
        Ok(envs)
    }

    pub fn api(&self) -> GpuApi {
        self.api
    }

    /// The device and API, as the backend names it.
    pub fn device_name(&self) -> String {
        self.dev.describe()
    }

    pub fn num_envs(&self) -> usize {
        self.n
    }

    /// Where the episodes come from.
    pub fn source(&self) -> &dyn EpisodeSource {
        &*self.source
    }

    pub fn obs_dim(&self) -> usize {
        self.params.obs_dim()
    }

    pub fn params(&self) -> &Arc<EnvParams> {
        &self.params
    }

    /// Episodes finished since creation (counted when the device's log is drained).
    pub fn episodes(&self) -> u64 {
        self.episodes
    }

    /// Summaries dropped because the log was full (drain it more often).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Day slots on the device, and how many hold a day now.
    pub fn slots(&self) -> (usize, usize) {
        (
            self.slot_day.len(),
            self.slot_day.iter().filter(|d| d.is_some()).count(),
        )
    }

    /// Bytes of state, market data, actions and outputs one environment step touches
    /// (the CPU engine's count: the same data, another machine).
    pub fn bytes_per_step(&self) -> usize {
        let (nu, ni, nf) = layout::class_counts();
        let k = self.params.feature_cols.len();
        2 * (4 * nu + 8 * ni + 8 * nf) + DayData::bytes_per_step(k) + 1 + 4 * self.obs_dim() + 4 + 4
    }

    /// Writes every environment's current observation.
    pub fn observe(&mut self, out: &mut StepOut<'_>) -> Result<()> {
        check_out(self.n, self.obs_dim(), out)?;
        self.dev.launch(Entry::Observe, self.tick)?;
        self.dev
            .read(Buf::Obs, 0, bytemuck::cast_slice_mut(&mut *out.obs))
    }

    /// One step of every environment with `actions[i]`, its outputs copied back to `out`
    /// (and, when an episode was truncated, the final observations to
    /// [`GpuEnvs::final_obs`]).
    pub fn step(&mut self, actions: &[u8], out: &mut StepOut<'_>) -> Result<()> {
        check_out(self.n, self.obs_dim(), out)?;
        self.step_on_device(actions)?;
        self.read_outputs(out)?;
        if out.truncated.iter().any(|&t| t != 0) {
            let d = self.obs_dim();
            self.dev.read(
                Buf::Obs,
                (4 * self.n * d) as u64,
                bytemuck::cast_slice_mut(&mut self.final_host),
            )?;
        }
        Ok(())
    }

    /// One step whose outputs stay on the device (a GPU learner reads them there).
    pub fn step_on_device(&mut self, actions: &[u8]) -> Result<()> {
        let t = std::time::Instant::now();
        check_actions(&self.params, self.n, actions)?;
        if self.refill_in == 0 {
            self.top_up()?;
        }
        if actions.len().is_multiple_of(4) {
            self.dev.write(Buf::Actions, 0, actions)?;
        } else {
            // WGSL reads the bytes as words.
            self.actions_padded.clear();
            self.actions_padded.extend_from_slice(actions);
            self.actions_padded
                .resize(actions.len().next_multiple_of(4), 0);
            self.dev.write(Buf::Actions, 0, &self.actions_padded)?;
        }
        self.launch_step()?;
        self.dev.count_step(t);
        Ok(())
    }

    /// One step with the actions a learner on the device wrote into the [`Buf::Actions`]
    /// buffer itself (through [`GpuEnvs::device_ptr`], in stream order before this call);
    /// the kernels trust them to be in `0..n_actions`.
    pub fn step_in_place(&mut self) -> Result<()> {
        let t = std::time::Instant::now();
        if self.refill_in == 0 {
            self.top_up()?;
        }
        self.launch_step()?;
        self.dev.count_step(t);
        Ok(())
    }

    fn launch_step(&mut self) -> Result<()> {
        self.dev.launch(Entry::Step, self.tick)?;
        self.tick = self.tick.wrapping_add(1);
        self.refill_in -= 1;
        Ok(())
    }

    /// What the host has done for the device since creation or [`GpuEnvs::reset_meter`].
    pub fn meter(&self) -> Meter {
        self.dev.meter
    }

    pub fn reset_meter(&mut self) {
        self.dev.meter = Meter::default();
    }

    /// The CUDA device address of `buf` (CUDA backend only): observations (`2·n·obs_dim`
    /// f32, the final observations after the first `n·obs_dim`), rewards (`n` f32), flags
    /// (`n` u32: bit 0 terminated, bit 1 truncated) and actions (`n` bytes). The buffers
    /// live, unmoved, as long as the environments.
    pub fn device_ptr(&self, buf: Buf) -> Option<u64> {
        self.dev.device_ptr(buf)
    }

    /// Copies the latest step's observations, rewards and flags to `out`.
    pub fn read_outputs(&mut self, out: &mut StepOut<'_>) -> Result<()> {
        check_out(self.n, self.obs_dim(), out)?;
        let d = self.obs_dim();
        self.dev.read(
            Buf::Obs,
            0,
            bytemuck::cast_slice_mut(&mut out.obs[..self.n * d]),
        )?;
        self.dev
            .read(Buf::Rewards, 0, bytemuck::cast_slice_mut(&mut *out.rewards))?;
        self.dev
            .read(Buf::Flags, 0, bytemuck::cast_slice_mut(&mut self.flags))?;
        for (i, &f) in self.flags.iter().enumerate() {
            out.terminated[i] = (f & 1) as u8;
            out.truncated[i] = (f >> 1 & 1) as u8;
        }
        Ok(())
    }

    /// Row `i` holds environment `i`'s last observation when its episode was truncated in
    /// the latest [`GpuEnvs::step`] (other rows are stale), as
    /// [`super::CpuEnvs::final_obs`]. Steps whose outputs stay on the device leave it
    /// alone: a learner there reads the second half of [`Buf::Obs`].
    pub fn final_obs(&self) -> &[f32] {
        &self.final_host
    }

    /// Waits for every launched step to finish.
    pub fn sync(&mut self) -> Result<()> {
        self.dev.sync()
    }

    /// Takes the summaries of episodes finished since the last call.
    pub fn drain_finished(&mut self) -> Result<Vec<EpisodeStats>> {
        self.drain_log_now()?;
        Ok(std::mem::take(&mut self.finished))
    }

    /// Everything that decides future steps, for a checkpoint (module docs, "Snapshots").
    /// Needs `&mut`: it reads the device. The device's episode log is drained first into
    /// the list [`Self::drain_finished`] returns (the log is not part of the snapshot); the
    /// host's bookkeeping is left as it was, so the run goes on as if never saved.
    pub fn save_state(&mut self) -> Result<Vec<u8>> {
        self.drain_log_now()?;
        // The pending readback decides the next top-up: kept for it, as it would be
        // without the snapshot.
        let rb = self.take_readback()?;
        let pending_heads = rb.heads.clone();
        self.pending = Pending::Ready(rb);
        let (n, q) = (self.n, self.q);
        let (lu, li, lf) = self.state_bytes();
        let mut su = vec![0u32; lu / 4];
        self.dev
            .read(Buf::StateU32, 0, bytemuck::cast_slice_mut(&mut su))?;
        let u_slot = layout::field("day_slot").index;
        let u_head = layout::field("ep_head").index;
        let mut days: Vec<DayKey> = Vec::new();
        let mut index: HashMap<u32, u32> = HashMap::new();
        let mut day_of = |slot: u32| {
            *index.entry(slot).or_insert_with(|| {
                let d = self.slot_day[slot as usize]
                    .as_ref()
                    .expect("the slot of a running or queued episode holds its day");
                days.push((d.symbol.clone(), d.date, d.bar_ms));
                days.len() as u32 - 1
            })
        };
        let (mut running, mut queued) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut taken, mut pending) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n {
            let slot_of_entry = |k: u32| self.queue_host[2 * (i * q + k as usize % q)];
            let t = su[u_head * n + i].wrapping_sub(self.head[i]);
            let p = pending_heads[i].wrapping_sub(self.head[i]);
            let len = self.queued[i].len() as u32;
            let device_slot = match t {
                0 => self.cur[i],
                t => slot_of_entry(self.head[i].wrapping_add(t - 1)),
            };
            if t > len || p > t || su[u_slot * n + i] != device_slot {
                return Err(Error::Device(format!(
                    "environment {i}: the device took {} entries of a queue of {len} (the pending readback {}) and runs on day slot {}, the host expected slot {device_slot}: the device state is inconsistent",
                    t as i32,
                    p as i32,
                    su[u_slot * n + i]
                )));
            }
            running.push(day_of(self.cur[i]));
            let entries = (0..len).map(|k| {
                let e = 2 * (i * q + self.head[i].wrapping_add(k) as usize % q);
                (day_of(self.queue_host[e]), self.queue_host[e + 1])
            });
            queued.push(entries.collect::<Vec<_>>());
            taken.push(t);
            pending.push(p);
        }
        let meta = SnapshotMeta {
            layout: layout::LAYOUT_VERSION,
            envs: n,
            obs_dim: self.obs_dim(),
            ring_w: ring_width(&self.params),
            queue_len: q,
            tick: self.tick,
            refill_in: self.refill_in,
            episodes: self.episodes,
            dropped: self.dropped,
            source: self.source.save_state(),
            days,
            running,
            queued,
            taken,
            pending,
        };
        let meta = serde_json::to_vec(&meta).expect("a plain struct serializes");
        let mut out = Vec::with_capacity(8 + meta.len() + lu + li + lf);
        out.extend_from_slice(&(meta.len() as u64).to_le_bytes());
        out.extend_from_slice(&meta);
        out.extend_from_slice(bytemuck::cast_slice(&su));
        let at = out.len();
        out.resize(at + li + lf, 0);
        self.dev.read(Buf::StateI64, 0, &mut out[at..at + li])?;
        self.dev.read(Buf::StateF64, 0, &mut out[at + li..])?;
        Ok(out)
    }

    /// Every (symbol, date) a [`GpuEnvs::save_state`] snapshot runs or queues an episode
    /// on, each once: the days a caller loads before [`GpuEnvs::load_state`].
    pub fn snapshot_days(bytes: &[u8]) -> Result<Vec<(String, chrono::NaiveDate)>> {
        let (_, meta) = snapshot_meta(bytes)?;
        let mut days: Vec<_> = (meta.days.into_iter())
            .map(|(symbol, date, _)| (symbol, date))
            .collect();
        days.sort_unstable();
        days.dedup();
        Ok(days)
    }

    /// Restores a [`GpuEnvs::save_state`] snapshot into environments built from the same
    /// config, on any backend; `day` finds a loaded day by symbol and date, as for
    /// [`super::CpuEnvs::load_state`] (it must have the saved bar length). Sizes, days and
    /// queues are checked before anything changes, and errors say what differs. The days
    /// get fresh slots and the queues a fresh numbering; [`Self::observe`] then gives the
    /// saved environments' observations.
    pub fn load_state(
        &mut self,
        bytes: &[u8],
        day: &dyn Fn(&str, chrono::NaiveDate) -> Option<Arc<DayData>>,
    ) -> Result<()> {
        let bad = |what: String| Error::Data(format!("environment snapshot: {what}"));
        let (len, meta) = snapshot_meta(bytes)?;
        let (n, q) = (self.n, self.q);
        if meta.layout != layout::LAYOUT_VERSION {
            return Err(bad(format!(
                "its state has GPU layout version {}, this build's is version {}: resume with the build that saved it",
                meta.layout,
                layout::LAYOUT_VERSION
            )));
        }
        let differs: Vec<String> = [
            ("environments", meta.envs, n),
            ("observation values", meta.obs_dim, self.obs_dim()),
            ("sharpe window", meta.ring_w, ring_width(&self.params)),
            ("queue length", meta.queue_len, q),
        ]
        .iter()
        .filter(|(_, saved, here)| saved != here)
        .map(|(what, saved, here)| format!("{what}: saved {saved}, here {here}"))
        .collect();
        if !differs.is_empty() {
            return Err(bad(format!(
                "it does not fit these environments ({}): resume with the saved run's config",
                differs.join("; ")
            )));
        }
        let (lu, li, lf) = self.state_bytes();
        let body = &bytes[8 + len..];
        if body.len() != lu + li + lf {
            return Err(bad(format!(
                "its state buffers hold {} bytes, these environments' {}",
                body.len(),
                lu + li + lf
            )));
        }
        let known = |d: u32| (d as usize) < meta.days.len();
        // Each environment's queue: at most `q` entries, of which the device took `t`,
        // `p` of them by the pending readback, and enough left for the steps before the
        // next top-up.
        let queue_ok = |i: usize| {
            let (len, t, p) = (meta.queued[i].len(), meta.taken[i], meta.pending[i]);
            len <= q && p <= t && (t as usize) <= len && len - t as usize >= meta.refill_in
        };
        if meta.running.len() != n
            || meta.queued.len() != n
            || meta.taken.len() != n
            || meta.pending.len() != n
            || meta.refill_in > self.period
            || !meta.running.iter().all(|&d| known(d))
            || !meta.queued.iter().flatten().all(|&(d, _)| known(d))
            || !(0..n).all(queue_ok)
        {
            return Err(bad("its episode queues are malformed".into()));
        }
        if meta.days.len() > self.slot_day.len() {
            return Err(bad(format!(
                "its episodes are on {} days at once, these environments have {} day slots: raise GpuOptions::day_slots",
                meta.days.len(),
                self.slot_day.len()
            )));
        }
        let days = meta
            .days
            .iter()
            .map(|(symbol, date, bar_ms)| {
                let d = day(symbol, *date).ok_or_else(|| {
                    bad(format!(
                        "{symbol} {date} is not among the loaded days: resume over the saved run's data"
                    ))
                })?;
                if d.bar_ms != *bar_ms {
                    return Err(bad(format!(
                        "{symbol} {date} was saved with {bar_ms} ms bars, the loaded day has {} ms bars: resume over the saved run's data",
                        d.bar_ms
                    )));
                }
                check_day(&self.params, &d)?;
                self.check_fits(&d)?;
                Ok(d)
            })
            .collect::<Result<Vec<_>>>()?;
        for &(d, start_row) in meta.queued.iter().flatten() {
            let day = days[d as usize].clone();
            super::Episode { day, start_row }.check()?;
        }
        // The source checks its state before taking it: the last check, the first change.
        self.source.load_state(&meta.source)?;

        // A readback in flight belongs to the state being replaced.
        if let Pending::InFlight { .. } = self.pending {
            self.dev.read_finish(&mut self.readback_bytes)?;
        }
        // Fresh slots, and entry k of each queue at position k (host head 0, the device's
        // `taken`).
        self.slot_day.fill(None);
        self.slot_refs.fill(0);
        self.slot_of.clear();
        self.upload_day.clear();
        self.retired.clear();
        self.retire_bound = 0;
        let mut su = vec![0u32; lu / 4];
        bytemuck::cast_slice_mut::<u32, u8>(&mut su).copy_from_slice(&body[..lu]);
        let u_slot = layout::field("day_slot").index;
        let u_head = layout::field("ep_head").index;
        for i in 0..n {
            let slot = self.slot_for(days[meta.running[i] as usize].clone())?;
            self.slot_refs[slot as usize] += 1;
            self.cur[i] = slot;
            self.queued[i].clear();
            (self.head[i], self.tail[i]) = (0, 0);
            for &(d, start_row) in &meta.queued[i] {
                self.enqueue(i, days[d as usize].clone(), start_row)?;
            }
            let t = meta.taken[i] as usize;
            su[u_slot * n + i] = match t {
                0 => slot,
                t => self.queue_host[2 * (i * q + t - 1)],
            };
            su[u_head * n + i] = t as u32;
        }
        self.dev
            .write(Buf::StateU32, 0, bytemuck::cast_slice(&su))?;
        self.dev.write(Buf::StateI64, 0, &body[lu..lu + li])?;
        self.dev.write(Buf::StateF64, 0, &body[lu + li..])?;
        self.upload_queues(0..n)?;
        self.dev.write(
            Buf::Ctl,
            4 * layout::CTL_LOG_COUNT as u64,
            &0u32.to_ne_bytes(),
        )?;
        (self.log_read, self.log_known) = (0, 0);
        self.pending = Pending::Ready(Readback {
            count: 0,
            heads: meta.pending,
            recs_from: 0,
            recs: Vec::new(),
        });
        self.tick = meta.tick;
        self.episodes = meta.episodes;
        self.dropped = meta.dropped;
        self.finished.clear();
        self.refill_in = meta.refill_in;
        Ok(())
    }

    /// Bytes of the three state buffers: `u32`, `i64`, and `f64` with the rolling windows.
    fn state_bytes(&self) -> (usize, usize, usize) {
        let (nu, ni, nf) = layout::class_counts();
        let ring_w = ring_width(&self.params);
        (4 * nu * self.n, 8 * ni * self.n, 8 * (nf + ring_w) * self.n)
    }

    /// Reads the device's episode log up to now, waiting for the device (for
    /// [`Self::drain_finished`] and snapshots; top-ups read it without waiting).
    fn drain_log_now(&mut self) -> Result<()> {
        let mut count = [0u32; 1];
        self.dev.read(
            Buf::Ctl,
            4 * layout::CTL_LOG_COUNT as u64,
            bytemuck::cast_slice_mut(&mut count),
        )?;
        let count = count[0];
        let cap = self.log_cap as u32;
        let unread = count.wrapping_sub(self.log_read);
        let from = if unread > cap {
            count.wrapping_sub(cap)
        } else {
            self.log_read
        };
        let mut recs = vec![LogRec::default(); count.wrapping_sub(from) as usize];
        let mut at = 0;
        for (buf, offset, len) in self.log_regions(from, recs.len() as u32) {
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut recs);
            self.dev.read(buf, offset, &mut bytes[at..at + len])?;
            at += len;
        }
        self.take_log(from, &recs, count)?;
        if count.wrapping_sub(self.log_known) as i32 > 0 {
            self.log_known = count;
        }
        Ok(())
    }

    /// The regions of the log ring that hold records `from .. from + count`.
    fn log_regions(&self, from: u32, count: u32) -> Vec<(Buf, u64, usize)> {
        let size = std::mem::size_of::<LogRec>();
        let first = from as usize & (self.log_cap - 1);
        let count = count as usize;
        let head = count.min(self.log_cap - first);
        let mut regions = Vec::with_capacity(2);
        if head > 0 {
            regions.push((Buf::Log, (first * size) as u64, head * size));
        }
        if count > head {
            regions.push((Buf::Log, 0, (count - head) * size));
        }
        regions
    }

    /// Takes log records `recs` (log indices from `from`), read when the device's log
    /// count was `count`, into the finished list in the CPU engine's order: records the
    /// host already took are skipped, and records overwritten before they were read (the
    /// ring came round) are counted as dropped.
    fn take_log(&mut self, from: u32, recs: &[LogRec], count: u32) -> Result<()> {
        let span = LogSpan::of(
            self.log_read,
            from,
            recs.len() as u32,
            count,
            self.log_cap as u32,
        );
        self.dropped += u64::from(span.lost);
        self.episodes += u64::from(span.advance);
        self.log_read = self.log_read.wrapping_add(span.advance);
        let batch = &recs[span.intact];
        if batch.is_empty() {
            return self.forget_retired();
        }
        let mut batch = batch.to_vec();
        batch.sort_unstable_by_key(|r| (r.tick, r.env));
        for r in batch {
            let day = self.upload_day.get(&r.day).ok_or_else(|| {
                Error::Device(format!(
                    "the episode log names day upload {}, which the host does not know: the device state is inconsistent",
                    r.day
                ))
            })?;
            let stats = EpisodeStats {
                env: r.env as usize,
                symbol: day.symbol.clone(),
                date: day.date,
                start_row: r.start_row,
                steps: r.steps,
                reason: REASONS[(r.reason as usize).clamp(1, 3) - 1],
                reward: r.reward,
                pnl: r.pnl,
                realized: r.realized,
                costs: r.costs,
                fills: r.fills,
                rejected: r.rejected,
                turnover: r.turnover,
            };
            if self.finished.len() < LOG_CAP {
                self.finished.push(stats);
            } else {
                self.dropped += 1;
            }
        }
        self.forget_retired()
    }

    /// Forgets the days of reused slots whose every log record the host has read.
    fn forget_retired(&mut self) -> Result<()> {
        while let Some(&(bound, upload)) = self.retired.front() {
            if bound.wrapping_sub(self.log_read) as i32 > 0 {
                break;
            }
            self.upload_day.remove(&upload);
            self.retired.pop_front();
        }
        Ok(())
    }

    /// Starts the readback the next top-up works from: the log count and the queue heads
    /// as they are after the steps submitted so far, and the log records up to the count
    /// the last readback brought (all written by now).
    fn start_readback(&mut self) -> Result<()> {
        let n = self.n;
        let cap = self.log_cap as u32;
        let unread = self.log_known.wrapping_sub(self.log_read);
        let (from, recs) = match unread {
            u if u as i32 <= 0 => (self.log_read, 0),
            u if u > cap => (self.log_known.wrapping_sub(cap), cap),
            u => (self.log_read, u),
        };
        let u_head = layout::field("ep_head").index;
        let mut regions = vec![
            (Buf::Ctl, 4 * layout::CTL_LOG_COUNT as u64, 4),
            (Buf::StateU32, (4 * u_head * n) as u64, 4 * n),
        ];
        regions.extend(self.log_regions(from, recs));
        self.dev.read_start(&regions)?;
        self.pending = Pending::InFlight {
            recs_from: from,
            recs,
        };
        Ok(())
    }

    /// The readback the last top-up started (waiting for it only if it has not arrived).
    fn take_readback(&mut self) -> Result<Readback> {
        match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::Ready(r) => Ok(r),
            Pending::None => Err(Error::Device(
                "a top-up found no readback started: the GPU engine's host state is inconsistent"
                    .into(),
            )),
            Pending::InFlight { recs_from, recs } => {
                let mut bytes = std::mem::take(&mut self.readback_bytes);
                self.dev.read_finish(&mut bytes)?;
                let n = self.n;
                let size = std::mem::size_of::<LogRec>();
                if bytes.len() != 4 + 4 * n + recs as usize * size {
                    return Err(Error::Device(format!(
                        "a readback brought {} bytes, {} were asked for",
                        bytes.len(),
                        4 + 4 * n + recs as usize * size
                    )));
                }
                let r = Readback {
                    count: u32::from_ne_bytes(bytes[..4].try_into().expect("4 bytes")),
                    heads: bytemuck::pod_collect_to_vec(&bytes[4..4 + 4 * n]),
                    recs_from,
                    recs: bytemuck::pod_collect_to_vec(&bytes[4 + 4 * n..]),
                };
                self.readback_bytes = bytes;
                Ok(r)
            }
        }
    }

    /// Tops every environment's queue up to `queue_len` entries past the heads the last
    /// readback brought (module docs, "Top-ups"): takes its log records and the entries
    /// the device took, frees the slots no episode needs any more, draws new episodes in
    /// environment order, uploads them (and any new day), and starts the next readback.
    /// It never waits for the device unless the readback has not arrived.
    fn top_up(&mut self) -> Result<()> {
        let rb = self.take_readback()?;
        self.take_log(rb.recs_from, &rb.recs, rb.count)?;
        if rb.count.wrapping_sub(self.log_known) as i32 > 0 {
            self.log_known = rb.count;
        }
        self.retire_bound = rb.count;
        self.take_heads(&rb.heads)?;
        self.move_window()?;
        let n = self.n;
        let mut patch = std::mem::take(&mut self.patch);
        patch.clear();
        patch.push(0);
        for i in 0..n {
            while self.queued[i].len() < self.q {
                let ep = self.source.next_episode(i)?;
                ep.check()?;
                check_day(&self.params, &ep.day)?;
                let e = self.enqueue(i, ep.day, ep.start_row)?;
                patch.extend_from_slice(&[e as u32, self.queue_host[2 * e], ep.start_row]);
            }
        }
        // Only the new entries go up; the scatter kernel puts them in place, after the
        // steps submitted before and before the next one (submission order).
        let count = (patch.len() - 1) / 3;
        if count > 0 {
            patch[0] = count as u32;
            self.dev.write(
                Buf::Queue,
                (8 * n * self.q) as u64,
                bytemuck::cast_slice(&patch),
            )?;
            self.dev.launch(Entry::Scatter, self.tick)?;
        }
        self.patch = patch;
        self.start_readback()?;
        self.refill_in = self.period;
        Ok(())
    }

    /// Moves the source's day window on by one day when the days it would then hold fit
    /// the slots beside the days running and queued episodes still use (module docs, "Day
    /// slots"); the days in use therefore never exceed the slots.
    fn move_window(&mut self) -> Result<()> {
        let Some(next) = self.source.window_after_move()? else {
            return Ok(());
        };
        let in_use = self.slot_refs.iter().filter(|&&r| r > 0).count();
        let coming = next
            .iter()
            .filter(|d| {
                self.slot_of
                    .get(&(d.symbol.clone(), d.date, d.bar_ms))
                    .is_none_or(|&s| self.slot_refs[s as usize] == 0)
            })
            .count();
        if in_use + coming <= self.slot_refs.len() {
            self.source.move_window();
        }
        Ok(())
    }

    /// Takes, on the host too, the queue entries the device had taken by a readback's
    /// `heads`, releasing the slots of the episodes they replaced.
    fn take_heads(&mut self, heads: &[u32]) -> Result<()> {
        for (i, &h) in heads.iter().enumerate() {
            let taken = h.wrapping_sub(self.head[i]);
            if taken > self.queued[i].len() as u32 {
                return Err(Error::Device(format!(
                    "environment {i} took {} episodes from a queue of {}: the device state is inconsistent",
                    taken as i32,
                    self.queued[i].len()
                )));
            }
            for _ in 0..taken {
                self.take_entry(i);
            }
        }
        Ok(())
    }

    /// The device took environment `i`'s next queue entry: its running episode's slot is
    /// released.
    fn take_entry(&mut self, i: usize) {
        if self.cur[i] != NO_SLOT {
            self.slot_refs[self.cur[i] as usize] -= 1;
        }
        self.cur[i] = self.queued[i].pop_front().expect("an entry was queued");
        self.head[i] = self.head[i].wrapping_add(1);
    }

    /// Appends an episode to environment `i`'s queue (host copy), uploading its day into a
    /// slot if no slot holds it; returns the queue entry's index (`i·q + tail % q`).
    fn enqueue(&mut self, i: usize, day: Arc<DayData>, start_row: u32) -> Result<usize> {
        let slot = self.slot_for(day)?;
        self.slot_refs[slot as usize] += 1;
        let e = i * self.q + self.tail[i] as usize % self.q;
        self.queue_host[2 * e] = slot;
        self.queue_host[2 * e + 1] = start_row;
        self.tail[i] = self.tail[i].wrapping_add(1);
        self.queued[i].push_back(slot);
        Ok(e)
    }

    fn upload_queues(&mut self, envs: std::ops::Range<usize>) -> Result<()> {
        let w = 2 * self.q;
        let bytes: &[u8] = bytemuck::cast_slice(&self.queue_host[envs.start * w..envs.end * w]);
        self.dev
            .write(Buf::Queue, (4 * envs.start * w) as u64, bytes)
    }

    /// Refuses a day that a slot cannot hold.
    fn check_fits(&self, day: &DayData) -> Result<()> {
        if day.rows() > self.slot_rows {
            return Err(Error::Data(format!(
                "{} {}: the day has {} bars, a GPU day slot holds {}: raise the slot size (GpuOptions::slot_rows) to at least {}",
                day.symbol,
                day.date,
                day.rows(),
                self.slot_rows,
                day.rows()
            )));
        }
        if day.halts.len() > MAX_HALTS {
            return Err(Error::Data(format!(
                "{} {}: the day has {} halts, a GPU day slot holds {MAX_HALTS}",
                day.symbol,
                day.date,
                day.halts.len()
            )));
        }
        Ok(())
    }

    /// The slot holding `day`, uploading it into a free slot first if none does.
    fn slot_for(&mut self, day: Arc<DayData>) -> Result<u32> {
        let key = (day.symbol.clone(), day.date, day.bar_ms);
        if let Some(&s) = self.slot_of.get(&key) {
            return Ok(s);
        }
        self.check_fits(&day)?;
        let free = (0..self.slot_refs.len())
            .find(|&s| self.slot_refs[s] == 0 && self.slot_day[s].is_none())
            .or_else(|| (0..self.slot_refs.len()).find(|&s| self.slot_refs[s] == 0))
            .ok_or_else(|| {
                Error::Device(format!(
                    "all {} GPU day slots ({} bars each, as many as {} holds in one buffer or GpuOptions::day_slots / train.day_slots allows) hold days that running or queued episodes need: allow more day slots, step fewer environments or shorter queues, or use an episode source that can draw day-major (env.start_times can; the scanner's sampler cannot yet)",
                    self.slot_refs.len(),
                    self.slot_rows,
                    self.dev.describe()
                ))
            })?;
        if let Some(old) = self.slot_day[free].take() {
            self.slot_of
                .remove(&(old.symbol.clone(), old.date, old.bar_ms));
            // Log records may still name the old day (module docs, "Top-ups").
            self.retired
                .push_back((self.retire_bound, self.slot_upload[free]));
        }
        let upload = self.next_upload;
        self.next_upload = self.next_upload.wrapping_add(1);
        let (s, rows, k) = (free as u64, self.slot_rows as u64, day.k as u64);
        self.dev.write(
            Buf::Bars,
            s * rows * std::mem::size_of::<super::BarRec>() as u64,
            bytemuck::cast_slice(&day.bars),
        )?;
        if k > 0 {
            self.dev.write(
                Buf::Feats,
                s * rows * k * 4,
                bytemuck::cast_slice(&day.features),
            )?;
        }
        let halts: Vec<u32> = day.halts.iter().flat_map(|&(a, b)| [a, b]).collect();
        if !halts.is_empty() {
            self.dev.write(
                Buf::Halts,
                s * (MAX_HALTS as u64) * 8,
                bytemuck::cast_slice(&halts),
            )?;
        }
        let info = SlotInfo {
            first_row: day.first_row,
            last_row: day.last_row,
            close_ms: day.close_ms,
            bar_ms: day.bar_ms,
            n_halts: day.halts.len() as u32,
            rows: day.rows() as u32,
            day: upload,
        };
        self.dev.write(
            Buf::Slots,
            s * std::mem::size_of::<SlotInfo>() as u64,
            bytemuck::bytes_of(&info),
        )?;
        self.slot_of.insert(key, free as u32);
        self.upload_day.insert(upload, day.clone());
        self.slot_upload[free] = upload;
        self.slot_day[free] = Some(day);
        Ok(free as u32)
    }
}

/// Records the episode log of `n` environments holds: a power of two (the kernels
/// index the ring with a mask), room for two episodes per environment at least.
fn log_capacity(n: usize) -> usize {
    LOG_CAP.max(2 * n).next_power_of_two()
}

/// Bytes of every buffer (`slots` = (rows per slot, day slots)).
fn buffer_sizes(
    params: &EnvParams,
    n: usize,
    q: usize,
    (slot_rows, day_slots): (usize, usize),
    log_cap: usize,
) -> [u64; N_BUFS] {
    let k = params.feature_cols.len();
    let d = params.obs_dim();
    let ring_w = ring_width(params);
    let (nu, ni, nf) = layout::class_counts();
    let mut sizes = [0u64; N_BUFS];
    let mut set =
        |b: Buf, bytes: usize| sizes[b as usize] = (bytes as u64).max(4).next_multiple_of(4);
    set(Buf::Params, std::mem::size_of::<Params>());
    set(Buf::ActionTable, 8 * params.actions.len());
    set(
        Buf::Bars,
        day_slots * slot_rows * std::mem::size_of::<super::BarRec>(),
    );
    set(Buf::Feats, day_slots * slot_rows * k * 4);
    set(Buf::Slots, day_slots * std::mem::size_of::<SlotInfo>());
    set(Buf::Halts, day_slots * MAX_HALTS * 8);
    set(Buf::StateU32, 4 * nu * n);
    set(Buf::StateI64, 8 * ni * n);
    set(Buf::StateF64, 8 * (nf + ring_w) * n);
    set(Buf::Actions, n);
    set(Buf::Obs, 2 * n * d * 4);
    set(Buf::Rewards, 4 * n);
    set(Buf::Flags, 4 * n);
    set(Buf::Queue, 4 * queue_words(n, q));
    set(Buf::Log, log_cap * std::mem::size_of::<LogRec>());
    set(Buf::Ctl, 4 * layout::CTL_WORDS);
    sizes
}

/// Refuses sizes the device cannot hold, saying how many environments would fit.
fn check_capacity(
    dev: &dyn Device,
    sizes: &[u64; N_BUFS],
    p: &EnvParams,
    q: usize,
    n: usize,
) -> Result<()> {
    let cap = dev.capacity();
    let per_env = bytes_per_env(p, q);
    let fixed: u64 = [
        Buf::Params,
        Buf::ActionTable,
        Buf::Bars,
        Buf::Feats,
        Buf::Slots,
        Buf::Halts,
        Buf::Log,
        Buf::Ctl,
    ]
    .iter()
    .map(|&b| sizes[b as usize])
    .sum();
    let total: u64 = sizes.iter().sum();
    if let Some(free) = cap.free
        && total > free
    {
        let fit = free.saturating_sub(fixed) / per_env;
        return Err(Error::Device(format!(
            "{n} environments need {:.1} GiB on {} ({:.1} GiB free, of which day slots and the log take {:.2} GiB): at most {fit} environments fit",
            total as f64 / (1u64 << 30) as f64,
            dev.describe(),
            free as f64 / (1u64 << 30) as f64,
            fixed as f64 / (1u64 << 30) as f64,
        )));
    }
    if let Some((b, &size)) = Buf::ALL
        .iter()
        .zip(sizes.iter())
        .find(|&(_, &s)| s > cap.max_buffer)
    {
        let per_env_buf = (size / n as u64).max(1);
        let fit = if matches!(b, Buf::Bars | Buf::Feats | Buf::Slots | Buf::Halts) {
            String::from("use fewer or smaller day slots (GpuOptions::day_slots, slot_rows)")
        } else {
            format!("at most {} environments fit", cap.max_buffer / per_env_buf)
        };
        return Err(Error::Device(format!(
            "the {b:?} buffer for {n} environments needs {size} bytes, {} allows {} per buffer: {fit}",
            dev.describe(),
            cap.max_buffer
        )));
    }
    Ok(())
}

/// The kernels' view of `p` (see [`layout::Params`]).
fn device_params(
    p: &EnvParams,
    n: usize,
    q: usize,
    (slot_rows, day_slots): (usize, usize),
    log_cap: usize,
) -> Result<Params> {
    let ring_w = if p.uses_sharpe() { p.sharpe_window } else { 0 };
    let words = |what: &str, v: usize| {
        u32::try_from(v)
            .map_err(|_| Error::Device(format!("{what} = {v} exceeds the kernels' 32-bit indices")))
    };
    // Every word index the kernels compute must fit their 32-bit arithmetic.
    let k = p.feature_cols.len().max(1);
    let (nu, _, nf) = layout::class_counts();
    for (what, words) in [
        (
            "day slots × bars per slot × features",
            day_slots as u64 * slot_rows as u64 * k as u64,
        ),
        (
            "environments × observation values × 2",
            2 * n as u64 * p.obs_dim() as u64,
        ),
        (
            "environments × f64 state words",
            n as u64 * (nf as u64 + ring_w as u64),
        ),
        ("environments × u32 state words", n as u64 * nu as u64),
        (
            "environments × queue length × 5 + 1 (episode queue and patch words)",
            5 * n as u64 * q as u64 + 1,
        ),
    ] {
        if words >= u32::MAX as u64 {
            return Err(Error::Device(format!(
                "{what} = {words} exceeds the kernels' 32-bit indices: use fewer environments or day slots"
            )));
        }
    }
    let (commission, per_share) = match p.commission {
        Commission::PerShare(v) => (v, 1),
        Commission::Notional(v) => (v, 0),
    };
    Ok(Params {
        initial_equity: p.initial_equity,
        inv_initial_equity: 1.0 / p.initial_equity,
        max_position_usd: p.max_position_usd,
        inv_max_position_usd: p.inv_max_position_usd,
        min_order_frac: p.min_order_frac,
        loss_limit: p.loss_limit,
        participation: p.participation,
        commission,
        commission_min: p.commission_min,
        half_spread_frac: p.half_spread_frac,
        impact_k: p.impact_k,
        borrow_per_ms: p.borrow_per_ms,
        reward_scale: p.reward_scale,
        w_pnl: p.weights.pnl,
        w_dsr: p.weights.dsr,
        w_sharpe: p.weights.sharpe,
        w_drawdown: p.weights.drawdown,
        w_turnover: p.weights.turnover,
        dsr_eta: p.dsr_eta,
        dsr_eps: p.dsr_eps,
        inv_session_ms: 1.0 / super::exec::SESSION_MS,
        n_envs: words("environments", n)?,
        k: p.feature_cols.len() as u32,
        obs_dim: p.obs_dim() as u32,
        n_actions: p.actions.len() as u32,
        latency_ms: p.latency_ms,
        max_episode_steps: p.max_episode_steps,
        carry_remainder: p.carry_remainder as u32,
        commission_per_share: per_share,
        dsr_warmup: p.dsr_warmup,
        ring_w,
        queue_len: words("queue length", q)?,
        slot_rows: words("slot rows", slot_rows)?,
        max_halts: MAX_HALTS as u32,
        log_cap: words("log capacity", log_cap)?,
        _pad0: 0,
        _pad1: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_spans_take_each_record_once_and_count_the_overwritten() {
        let span = |read, from, len, count| LogSpan::of(read, from, len, count, 8);
        let s = |advance, lost, intact| LogSpan {
            advance,
            lost,
            intact,
        };
        // Everything new.
        assert_eq!(span(0, 0, 5, 5), s(5, 0, 0..5));
        // The first three were read by a blocking drain; all of them.
        assert_eq!(span(3, 0, 5, 5), s(2, 0, 3..5));
        assert_eq!(span(5, 0, 5, 9), s(0, 0, 0..0));
        assert_eq!(span(100, 90, 5, 120), s(0, 0, 0..0));
        // The ring came round: indices below count - cap = 12 were overwritten, before
        // the copy (4..8 and the gap 0..4) or within it (10, 11).
        assert_eq!(span(0, 4, 4, 20), s(8, 8, 4..4));
        assert_eq!(span(10, 10, 6, 20), s(6, 2, 2..6));
        // Overwritten but read before: not lost.
        assert_eq!(span(13, 10, 6, 20), s(3, 0, 3..6));
        // Across the 32-bit wrap of the count.
        let m = u32::MAX - 2;
        assert_eq!(span(m, m, 5, m.wrapping_add(5)), s(5, 0, 0..5));
        assert_eq!(span(m, m, 5, m.wrapping_add(12)), s(5, 4, 4..5));
        assert_eq!(
            span(m, m.wrapping_add(3), 2, m.wrapping_add(5)),
            s(5, 3, 0..2)
        );
    }

    #[test]
    fn every_word_index_the_kernels_compute_is_checked_against_32_bits() {
        let p = EnvParams::from_config(&crate::env::EnvConfig::default()).unwrap();
        assert!(device_params(&p, 65_536, 32, (64, 100), LOG_CAP).is_ok());
        // 2^22 environments × 1024 queued episodes × 5 words (the pairs, then the patch
        // area's triples) ≈ 2^34 queue words: fits every other check, not the queue's.
        let n = 1 << 22;
        let (nu, _, nf) = layout::class_counts();
        let obs = p.obs_dim() as u64;
        assert!(2 * n * obs < u32::MAX as u64 && n * (nf as u64) < u32::MAX as u64);
        assert!(n * (nu as u64) < u32::MAX as u64);
        let e = device_params(&p, n as usize, 1024, (64, 100), LOG_CAP).unwrap_err();
        assert!(e.to_string().contains("queue length"), "{e}");
        assert!(device_params(&p, n as usize, 256, (64, 100), LOG_CAP).is_err());
        assert!(device_params(&p, n as usize, 128, (64, 100), LOG_CAP).is_ok());
    }
}
